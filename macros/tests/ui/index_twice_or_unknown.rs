use pbpersist::{Meta, Persistent};

#[derive(Clone, PartialEq, Persistent)]
struct Account {
    #[pbpersist(tag = 1, string, index, index(unique))]
    email: String,
    #[pbpersist(tag = 2, string, index(sorted))]
    name: String,
    #[pbpersist(tag = 3, map(string, string), index)]
    labels: std::collections::BTreeMap<String, String>,
    #[pbpersist(meta)]
    meta: Meta,
}

fn main() {}
