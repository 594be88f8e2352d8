use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(oneof(member(name = "email", tag = 1, map(string, string))))]
    kind: Option<Kind>,
    #[pbpersist(meta)]
    meta: Meta,
}

#[derive(Clone, PartialEq, Debug)]
enum Kind {
    Email(String),
}

fn main() {}
