use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 1, map(double, string))]
    scores: std::collections::BTreeMap<u64, String>,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
