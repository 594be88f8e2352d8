use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 1)]
    title: String,
    #[pbpersist(tag = 1)]
    body: String,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
