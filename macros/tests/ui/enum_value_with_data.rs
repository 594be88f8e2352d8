use pbpersist::Enumeration;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Enumeration)]
#[repr(u8)]
enum Mood {
    Calm(u8) = 0,
}

fn main() {}
