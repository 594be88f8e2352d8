use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 1, default = "many")]
    ratio: Option<f64>,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
