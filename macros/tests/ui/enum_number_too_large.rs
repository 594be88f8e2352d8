use pbpersist::Enumeration;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Enumeration)]
#[repr(i64)]
enum Mood {
    Calm = 3_000_000_000,
}

fn main() {}
