use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Reading {
    #[pbpersist(tag = 1, float, index)]
    celsius: f32,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
