use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 1, default = 3)]
    blob: Option<Vec<u8>>,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
