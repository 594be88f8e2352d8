use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    title: String,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
