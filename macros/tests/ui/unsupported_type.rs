use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 1)]
    tags: std::collections::HashSet<String>,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
