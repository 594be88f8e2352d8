use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
#[pbpersist(index(fields("city", "tags")), index(fields("city", "zip")), index(fields("city")))]
struct Place {
    #[pbpersist(tag = 1, string)]
    city: String,
    #[pbpersist(tag = 2, repeated, string)]
    tags: Vec<String>,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
