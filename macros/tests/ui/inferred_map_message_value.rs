use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 1)]
    people: std::collections::BTreeMap<String, Person>,
    #[pbpersist(meta)]
    meta: Meta,
}

#[derive(Clone, PartialEq, Persistent)]
struct Person {
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
