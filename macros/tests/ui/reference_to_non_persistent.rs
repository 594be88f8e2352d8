use pbpersist::{Meta, Persistent, Ref};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 1)]
    next: Option<Ref<String>>,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
