use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 1, reference)]
    next: Option<u64>,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
