use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Home {
    #[pbpersist(tag = 1, string)]
    city: String,
    #[pbpersist(meta)]
    meta: Meta,
}

#[derive(Clone, PartialEq, Persistent)]
#[pbpersist(
    index(fields("home.city")),
    index(fields("home.city: double")),
    index(fields("name.first: string")),
    index(fields("name: string", "born")),
    index(fields("home.street.no: int32"))
)]
struct Person {
    #[pbpersist(tag = 1, optional, message)]
    home: Option<Home>,
    #[pbpersist(tag = 2, string)]
    name: String,
    #[pbpersist(tag = 3, int64)]
    born: i64,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
