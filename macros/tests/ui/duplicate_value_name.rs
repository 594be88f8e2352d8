use pbpersist::Enumeration;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Enumeration)]
enum Mood {
    #[pbpersist(name = "CALM")]
    Calm = 0,
    #[pbpersist(name = "CALM")]
    Still = 1,
}

fn main() {}
