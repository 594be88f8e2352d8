use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 1, message, default = 1)]
    next: Option<Box<Note>>,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
