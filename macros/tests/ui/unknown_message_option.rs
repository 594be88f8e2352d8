use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
#[pbpersist(mesage = "notes.Note")]
struct Note {
    #[pbpersist(tag = 1)]
    title: String,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
