use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 1)]
    scores: std::collections::BTreeMap<f64, String>,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
