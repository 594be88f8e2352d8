use pbpersist::Persistent;

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 1)]
    title: String,
}

fn main() {}
