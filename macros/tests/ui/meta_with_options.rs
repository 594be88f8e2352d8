use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(meta, tag = 2)]
    meta: Meta,
}

fn main() {}
