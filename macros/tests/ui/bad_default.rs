use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 1, default = "three")]
    priority: Option<i32>,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
