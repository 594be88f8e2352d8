// Every mistake of a struct is reported in one compile, and uses of the
// type elsewhere add no errors of their own.
use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 1, strng)]
    title: String,
    #[pbpersist(tag = 1)]
    body: String,
    #[pbpersist(tag = 3, default = "many")]
    count: Option<u32>,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {
    let note = Note::default();
    let _ = pbpersist::Persistent::is_changed(&note);
}
