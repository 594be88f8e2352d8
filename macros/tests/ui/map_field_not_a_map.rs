use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 1, map(string, string))]
    scores: Vec<String>,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
