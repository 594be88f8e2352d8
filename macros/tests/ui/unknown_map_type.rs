use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 1, map(string, text))]
    scores: std::collections::BTreeMap<String, String>,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
