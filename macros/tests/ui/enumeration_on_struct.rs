use pbpersist::Enumeration;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Enumeration)]
struct Mood {}

fn main() {}
