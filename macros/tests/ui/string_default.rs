use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 1, default = 3)]
    title: Option<String>,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
