use pbpersist::Persistent;

#[derive(Clone, PartialEq, Persistent)]
enum Note {
    A,
}

fn main() {}
