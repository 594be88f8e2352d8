use pbpersist::Enumeration;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Enumeration)]
enum Mood {
    #[pbpersist(nam = "CALM")]
    Calm = 0,
}

fn main() {}
