//! The generated API: defaults, presence, change tracking, oneofs, maps,
//! enums and unknown fields, used as a user would.

use pbpersist::object::FieldInfo;
use pbpersist::{EnumValue, Persistent};
use pbpersist_tests::demo::{Address, Contact, Tower, contact};
use pbpersist_tests::evolution::{Color, Inner, NoteV1, NoteV2, note_v2};
use prost::Message;

#[test]
fn fresh_objects_read_schema_defaults_and_report_no_presence() {
    let tower = Tower::new();
    assert_eq!(tower.build_year(), 1900);
    assert!(!tower.has_build_year());
    assert_eq!(tower.name(), "");
    assert!(!tower.has_name());
    assert_eq!(tower.neighbor(), None);

    let address = Address::default();
    assert_eq!(address.country(), "United States");
    assert!(!address.has_country());
    assert_eq!(address.country_opt(), None);

    let contact = Contact::new();
    assert_eq!(contact.kind(), contact::Kind::Person, "[default = PERSON]");
    assert_eq!(contact.address().country(), "United States", "unset message reads a default instance");
    assert!(!contact.has_address());
    assert!(contact.guardians().is_empty());
}

#[test]
fn setters_set_presence_and_clear_restores_the_default() {
    let mut tower = Tower::new();
    tower.set_build_year(2001);
    assert!(tower.has_build_year());
    assert_eq!(tower.build_year(), 2001);
    tower.clear_build_year();
    assert!(!tower.has_build_year());
    assert_eq!(tower.build_year(), 1900);

    let mut address = Address::new();
    address.country_mut().push_str(" of America");
    assert_eq!(address.country(), "United States of America", "_mut starts from the default");
}

fn names(fields: Vec<FieldInfo>) -> Vec<(&'static str, u32)> {
    fields.into_iter().map(|f| (f.name, f.number)).collect()
}

#[test]
fn change_tracking_reports_exactly_the_fields_written() {
    let mut tower = Tower::new();
    assert!(!tower.is_changed());
    let _ = (tower.name(), tower.width(), tower.build_year(), tower.has_height(), tower.neighbor());
    assert!(!tower.is_changed(), "reads mark nothing");

    tower.set_width(3.0);
    tower.clear_build_year();
    assert!(tower.is_changed());
    assert_eq!(names(tower.changed_fields()), vec![("width", 2), ("build_year", 4)]);

    let mut contact = Contact::new();
    contact.guardians_mut();
    contact.address_mut().set_city("Paris");
    assert_eq!(names(contact.changed_fields()), vec![("address", 2), ("guardians", 3)]);

    tower.mark_unchanged();
    assert!(!tower.is_changed());
    assert!(tower.changed_fields().is_empty());
}

#[test]
fn decoded_objects_start_unchanged() {
    let mut tower = Tower::new();
    tower.set_name("T");
    tower.set_width(1.0);
    tower.set_height(2.0);
    let bytes = tower.encode_to_vec();
    let loaded = Tower::decode(bytes.as_slice()).unwrap();
    assert!(!loaded.is_changed());
    assert_eq!(loaded, tower, "equality ignores change bits");
}

#[test]
fn oneof_members_replace_each_other_and_track_both_fields() {
    let mut c = Contact::new();
    assert_eq!(c.reach(), None);
    c.set_phone("555");
    assert!(c.has_phone());
    assert_eq!(c.phone(), "555");
    c.mark_unchanged();

    c.postal_mut().set_city("Oslo");
    assert!(!c.has_phone());
    assert_eq!(c.phone(), "", "another member is set");
    assert_eq!(c.postal().city(), "Oslo");
    assert_eq!(names(c.changed_fields()), vec![("phone", 7), ("postal", 8)]);

    let target = pbpersist::Ref::new(pbpersist::Oid(42));
    c.set_agent(target);
    assert_eq!(c.agent(), Some(target));
    assert!(matches!(c.reach(), Some(contact::Reach::Agent(_))));
    c.clear_reach();
    assert_eq!(c.reach(), None);

    let bytes = {
        let mut c = Contact::new();
        c.set_name("x");
        c.set_agent(target);
        c.encode_to_vec()
    };
    assert_eq!(Contact::decode(bytes.as_slice()).unwrap().agent(), Some(target));
}

#[test]
fn maps_enums_and_repeated_fields_round_trip() {
    let mut c = Contact::new();
    c.set_name("Carol");
    c.labels_mut().insert("role".into(), "admin".into());
    c.emails_mut().extend(["a@x".to_owned(), "b@x".to_owned()]);
    c.set_kind(contact::Kind::Organization);
    c.guardians_mut().push(pbpersist::Ref::new(pbpersist::Oid(7)));
    let back = Contact::decode(c.encode_to_vec().as_slice()).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.labels().get("role").map(String::as_str), Some("admin"));
    assert_eq!(back.kind(), contact::Kind::Organization);
    assert_eq!(back.refs(), vec![pbpersist::Oid(7)]);
}

#[test]
fn unknown_enum_numbers_are_kept() {
    let mut v2 = NoteV2::new();
    v2.set_color(Color::Green);
    let mut bytes = v2.encode_to_vec();
    // Number 9 is not a Color this program knows.
    bytes[1] = 9;
    let mut decoded = NoteV2::decode(bytes.as_slice()).unwrap();
    assert_eq!(decoded.color(), Color::Unspecified);
    assert_eq!(decoded.color_raw(), EnumValue::new(9));
    decoded.set_title("t");
    let again = NoteV2::decode(decoded.encode_to_vec().as_slice()).unwrap();
    assert_eq!(again.color_raw().value(), 9);
}

#[test]
fn fields_of_a_newer_schema_survive_an_older_program_changing_the_object() {
    let mut v2 = NoteV2::new();
    v2.set_title("old title");
    v2.set_count(-5);
    v2.tags_mut().extend(["a".to_owned(), "b".to_owned()]);
    v2.inner_mut().set_label("in");
    v2.set_color(Color::Red);
    v2.scores_mut().insert("x".into(), 3);
    v2.set_checksum(0xdead_beef);
    v2.set_ratio(0.25);
    v2.set_link(pbpersist::Ref::new(pbpersist::Oid(99)));
    let mut inner = Inner::new();
    inner.set_label("detail");
    v2.set_detail(inner);

    let mut v1 = NoteV1::decode(v2.encode_to_vec().as_slice()).unwrap();
    assert!(!v1.meta().unknown_fields().is_empty());
    v1.set_title("new title");
    let back = NoteV2::decode(v1.encode_to_vec().as_slice()).unwrap();

    let mut expected = v2.clone();
    expected.set_title("new title");
    assert_eq!(back, expected);
    assert!(matches!(back.choice(), Some(note_v2::Choice::Detail(_))));
}

#[test]
fn encoding_after_a_nested_change_writes_the_new_lengths() {
    use pbpersist_tests::coverage::corpus::nested::Tree;
    use pbpersist_tests::prost_reference::corpus::nested::Tree as Reference;
    let leaf = |name: &str| {
        let mut t = Tree::new();
        t.set_name(name);
        t
    };
    let mut tree = leaf("root");
    tree.children_mut().push(leaf("a"));
    tree.children_mut()[0].children_mut().push(leaf("b"));
    tree.first_mut().set_name("c");
    let before = tree.encode_to_vec();
    // Encoding remembers each message's length; a change deep down must
    // still give every enclosing message its new length.
    tree.children_mut()[0].children_mut()[0].set_name("a much longer name than before");
    tree.first_mut().first_mut().set_name("d");
    let after = tree.encode_to_vec();
    assert_ne!(before, after);
    let read = Reference::decode(after.as_slice()).unwrap();
    assert_eq!(read.children[0].children[0].name(), "a much longer name than before");
    assert_eq!(read.first.as_ref().unwrap().first.as_ref().unwrap().name(), "d");
    assert_eq!(tree.encoded_len(), after.len());
    // A clone encodes the same, and so does the length-delimited form.
    assert_eq!(tree.clone().encode_to_vec(), after);
    let delimited = tree.encode_length_delimited_to_vec();
    assert_eq!(Tree::decode_length_delimited(delimited.as_slice()).unwrap(), tree);
}
