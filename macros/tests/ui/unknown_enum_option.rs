use pbpersist::Enumeration;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Enumeration)]
#[pbpersist(enumeraton = "notes.Mood")]
enum Mood {
    Calm = 0,
}

fn main() {}
