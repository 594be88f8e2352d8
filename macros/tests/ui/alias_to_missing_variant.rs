use pbpersist::Enumeration;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Enumeration)]
#[pbpersist(alias(ident = "QUIET", name = "QUIET", variant = "Quiet"))]
enum Mood {
    Calm = 0,
}

fn main() {}
