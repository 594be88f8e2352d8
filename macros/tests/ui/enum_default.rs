use pbpersist::{EnumValue, Enumeration, Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Note {
    #[pbpersist(tag = 1, default = "CALM")]
    mood: Option<EnumValue<Mood>>,
    #[pbpersist(meta)]
    meta: Meta,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Enumeration)]
enum Mood {
    Calm = 0,
}

fn main() {}
