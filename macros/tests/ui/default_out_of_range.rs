use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 1, default = -1)]
    priority: Option<u32>,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
