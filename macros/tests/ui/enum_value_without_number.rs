use pbpersist::Enumeration;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Enumeration)]
enum Mood {
    Calm,
}

fn main() {}
