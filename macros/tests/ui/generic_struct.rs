use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note<T> {
    #[pbpersist(tag = 1, message)]
    items: Vec<T>,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
