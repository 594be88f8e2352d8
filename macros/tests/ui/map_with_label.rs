use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 1, repeated)]
    scores: std::collections::BTreeMap<String, i64>,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
