//! The encoded messages the codec benchmarks decode and encode, the same
//! bytes for pbpersist's and prost's types.

use pbpersist::Ref;
use pbpersist_tests::random::{Rng, pool, random_message};
use prost::Message;

/// The bytes of a random message of `name` from the coverage corpus.
pub fn corpus(name: &str, seed: u64) -> Vec<u8> {
    let pool = pool();
    let desc = pool.get_message_by_name(name).unwrap_or_else(|| panic!("{name} is not in the corpus"));
    random_message(&desc, &mut Rng(seed), 0).encode_to_vec()
}

/// A `demo.Tower` as the Tower workload writes it.
pub fn tower() -> Vec<u8> {
    let mut t = pbpersist_tests::demo::Tower::new();
    t.set_name("tower-12345");
    t.set_width(12.5);
    t.set_height(30.0);
    t.set_build_year(1901);
    t.set_neighbor(Ref::new(pbpersist::Oid(12344)));
    t.encode_to_vec()
}

/// The Tower of [`tower`] as a newer schema writes it, one that added
/// `string architect = 6` and `uint32 floors = 7`: read as a `demo.Tower`,
/// those two are unknown fields. Fields after the known ones are what that
/// schema's writer would append.
pub fn tower_v2() -> Vec<u8> {
    let mut bytes = tower();
    prost::encoding::string::encode(6, &"Gustave Eiffel".to_owned(), &mut bytes);
    prost::encoding::uint32::encode(7, &3, &mut bytes);
    bytes
}

/// A `NoteV2` with every field set, to be read as a `NoteV1`, which knows
/// only `title`: the rest are unknown fields.
pub fn note_v2() -> Vec<u8> {
    use pbpersist_tests::evolution::{Color, NoteV2};
    let mut v2 = NoteV2::new();
    v2.set_title("title");
    v2.set_count(-5);
    v2.tags_mut().extend(["a".to_owned(), "b".to_owned(), "c".to_owned()]);
    v2.inner_mut().set_label("inner");
    v2.set_color(Color::Red);
    v2.scores_mut().insert("x".into(), 3);
    v2.set_ratio(0.25);
    v2.set_text("oneof member");
    v2.encode_to_vec()
}

/// prost's view of `NoteV1`: `title` only; prost drops the other fields.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProstNoteV1 {
    /// The one field NoteV1 declares.
    #[prost(string, tag = "1")]
    pub title: String,
}
