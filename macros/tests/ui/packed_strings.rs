use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 1, packed)]
    tags: Vec<String>,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
