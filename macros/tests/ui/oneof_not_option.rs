use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(oneof(member(name = "email", tag = 1, string)))]
    kind: Kind,
    #[pbpersist(meta)]
    meta: Meta,
}

#[derive(Clone, PartialEq, Debug)]
enum Kind {
    Email(String),
}

fn main() {}
