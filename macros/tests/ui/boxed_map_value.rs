use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 1)]
    people: std::collections::BTreeMap<String, Box<Note>>,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
