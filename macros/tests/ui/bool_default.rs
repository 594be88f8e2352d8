use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 1, default = "yes")]
    done: Option<bool>,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
