use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(meta)]
    other: Meta,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
