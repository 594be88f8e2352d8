use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 19500)]
    title: String,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
