use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 1, repeated, string)]
    tags: String,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
