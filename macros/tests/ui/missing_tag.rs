use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(string)]
    title: String,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
