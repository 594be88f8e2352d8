use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 1, string, bytes)]
    title: String,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
