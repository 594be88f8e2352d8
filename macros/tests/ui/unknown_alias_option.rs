use pbpersist::Enumeration;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Enumeration)]
#[pbpersist(alias(ident = "QUIET", name = "QUIET", varient = "Calm"))]
enum Mood {
    Calm = 0,
}

fn main() {}
