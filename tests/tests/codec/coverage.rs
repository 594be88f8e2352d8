//! The generated API over the coverage corpus: defaults of every scalar
//! type, aliases, closed and open enums, groups, well-known types, imports,
//! Rust name hazards and messages with more than 64 fields.

use pbpersist::{EnumValue, Persistent};
use pbpersist_tests::coverage::{self as nopkg, a, corpus};
use prost::Message;

#[test]
fn every_scalar_type_reads_its_schema_default() {
    use corpus::scalars::{Level, Scalars};
    let s = Scalars::new();
    assert_eq!(s.f_double(), 1.5);
    assert_eq!(s.f_float(), -2.25);
    assert_eq!(s.f_int32(), -32);
    assert_eq!(s.f_int64(), -6_400_000_000);
    assert_eq!(s.f_uint32(), 4_000_000_000);
    assert_eq!(s.f_uint64(), 18_000_000_000_000_000_000);
    assert_eq!(s.f_sint32(), -7);
    assert_eq!(s.f_sint64(), -8);
    assert_eq!(s.f_fixed32(), 9);
    assert_eq!(s.f_fixed64(), 10);
    assert_eq!(s.f_sfixed32(), -11);
    assert_eq!(s.f_sfixed64(), -12);
    assert!(s.f_bool());
    assert_eq!(s.f_string(), "d\"e\\f é");
    assert_eq!(s.f_bytes(), &[1, 2, 255]);
    assert_eq!(s.f_level(), Level::Mid);
    assert_eq!(s.f_inf(), f64::INFINITY);
    assert_eq!(s.f_neg_inf(), f32::NEG_INFINITY);
    assert!(s.f_nan().is_nan());
    assert!(!s.has_f_double() && !s.has_f_level());
    assert!(s.check_required().is_err(), "r_int32 and r_string are required");
}

#[test]
fn proto3_fields_have_implicit_or_explicit_presence_and_open_enums() {
    use corpus::proto3::{Color, Implicit};
    let mut m = Implicit::new();
    m.set_f_int32(0);
    assert!(m.encode_to_vec().is_empty(), "implicit presence does not write the default");
    assert!(!m.has_o_int32());
    m.set_o_int32(0);
    assert!(m.has_o_int32());
    assert_eq!(m.encode_to_vec(), vec![160, 1, 0], "explicit presence writes a set zero");
    m.set_f_color(Color::Blue);
    assert_eq!(m.f_color(), Color::Blue);
    // An open enum keeps an unknown number in the field.
    let bytes = [128, 1, 77];
    let decoded = Implicit::decode(bytes.as_slice()).unwrap();
    assert_eq!(decoded.f_color_raw(), EnumValue::new(77));
    assert_eq!(decoded.f_color(), Color::Unspecified);
    assert!(decoded.meta().unknown_fields().is_empty());
}

#[test]
fn closed_enums_keep_unknown_numbers_with_the_unknown_fields_and_aliases_are_constants() {
    use corpus::enums::{Job, Status};
    assert_eq!(Status::STARTED, Status::Running);
    assert_eq!(<Status as pbpersist::Enumeration>::from_proto_name("STATUS_STARTED"), Some(Status::Running));
    assert_eq!(Status::Failed as i32, -1);
    assert_eq!(Job::new().with_default(), Status::Failed);

    // status = 9 and history = [1, 9]: 9 is not a Status.
    let bytes = [8, 9, 16, 1, 16, 9];
    let mut job = Job::decode(bytes.as_slice()).unwrap();
    assert!(!job.has_status(), "a closed enum's unknown number does not set the field");
    assert_eq!(job.history(), &[EnumValue::new(1)]);
    assert_eq!(job.meta().unknown_fields(), &[8, 9, 16, 9]);
    job.set_history(vec![Status::Failed.into()]);
    let again = Job::decode(job.encode_to_vec().as_slice()).unwrap();
    assert_eq!(again.meta().unknown_fields(), &[8, 9, 16, 9], "the unknown numbers survive a save");
}

#[test]
fn groups_decode_and_encode_as_groups() {
    use corpus::groups::{WithGroups, with_groups};
    let mut g = WithGroups::new();
    g.single_mut().set_a(5);
    let mut many = with_groups::Many::new();
    many.set_c(7);
    g.many_mut().push(many);
    let bytes = g.encode_to_vec();
    // Field 1 starts a group (wire type 3) and ends it (wire type 4).
    assert_eq!(&bytes[..4], &[11, 16, 5, 12]);
    assert_eq!(WithGroups::decode(bytes.as_slice()).unwrap(), g);
}

#[test]
fn nested_and_recursive_messages() {
    use corpus::nested::{Outer, Ping, Pong, Tree, outer};
    let mut o = Outer::new();
    o.middle_mut().inner_mut().set_deep(outer::middle::inner::Deep::B);
    assert_eq!(o.deep(), outer::middle::inner::Deep::B, "[default = DEEP_B]");
    let mut tree = Tree::new();
    tree.first_mut().children_mut().push(Tree::new());
    let mut ping = Ping::new();
    ping.pong_mut().ping_mut().set_n(3);
    assert_eq!(Ping::decode(ping.encode_to_vec().as_slice()).unwrap().pong().ping().n(), 3);
    let _: &Pong = ping.pong();
    assert_eq!(Tree::decode(tree.encode_to_vec().as_slice()).unwrap(), tree);
}

#[test]
fn oneofs_hold_every_member_kind() {
    use corpus::oneofs::{Choice, Kind, Payload, choice};
    let mut c = Choice::new();
    c.set_blob(vec![1, 2]);
    assert_eq!(c.blob(), &[1, 2]);
    c.set_kind(Kind::Some);
    assert_eq!(c.kind(), Kind::Some);
    assert!(!c.has_blob());
    let mut p = Payload::new();
    p.set_label("x");
    c.set_payload(p);
    assert_eq!(c.payload().label(), "x");
    c.set_target(pbpersist::Ref::new(pbpersist::Oid(4)));
    assert_eq!(c.refs(), vec![pbpersist::Oid(4)]);
    c.set_a(-3);
    assert!(matches!(c.second(), Some(choice::Second::A(-3))));
    assert_eq!(Choice::decode(c.encode_to_vec().as_slice()).unwrap(), c);
}

#[test]
fn maps_with_every_key_type_and_value_kind() {
    use corpus::maps::{Maps, Tone, Value};
    let mut m = Maps::new();
    m.k_bool_mut().insert(true, "t".into());
    m.k_sfixed64_mut().insert(-1, "m".into());
    m.v_enum_mut().insert("loud".into(), Tone::Loud.into());
    let mut v = Value::new();
    v.set_text("hi");
    m.v_message_mut().insert("k".into(), v);
    m.v_ref_mut().insert("r".into(), pbpersist::Ref::new(pbpersist::Oid(8)));
    m.v_self_mut().insert(1, Maps::new());
    assert_eq!(m.refs(), vec![pbpersist::Oid(8)]);
    assert_eq!(Maps::decode(m.encode_to_vec().as_slice()).unwrap(), m);
}

#[test]
fn well_known_types_are_pbpersist_wkt_types_with_std_conversions() {
    use corpus::wkt::Event;
    use pbpersist::wkt::{Int32Value, Timestamp};
    let mut e = Event::new();
    let now = std::time::SystemTime::now();
    e.set_at(Timestamp::from(now));
    e.set_took(std::time::Duration::from_millis(250).try_into().unwrap());
    e.set_i32(Int32Value::from(5));
    e.set_detail(pbpersist::wkt::Any::pack(&Int32Value::from(9)));
    e.set_attributes([("k", pbpersist::wkt::Value::from(true))].into_iter().collect());
    let back = Event::decode(e.encode_to_vec().as_slice()).unwrap();
    assert_eq!(std::time::SystemTime::try_from(back.at()).unwrap(), now);
    assert_eq!(std::time::Duration::try_from(back.took()).unwrap().as_millis(), 250);
    assert_eq!(back.i32().value(), 5);
    assert_eq!(back.detail().unpack::<Int32Value>().unwrap().unwrap().value(), 9);
    assert!(back.attributes().fields()["k"].bool_value());
}

#[test]
fn imports_across_packages() {
    use pbpersist_tests::coverage::c::d::{Mode, Shared};
    let mut u = a::b::User::new();
    u.shared_mut().set_id("s");
    u.set_mode(Mode::On);
    u.by_key_mut().insert("x".into(), Shared::new());
    u.set_owner(pbpersist::Ref::new(pbpersist::Oid(2)));
    assert_eq!(a::b::User::decode(u.encode_to_vec().as_slice()).unwrap(), u);
}

#[test]
fn names_that_are_hazards_in_rust_get_working_accessors() {
    // A field named `new` keeps its getter, so the constructor is `default()`.
    let mut t = nopkg::Type::default();
    t.set_type("kind");
    t.set_self_(1); // the field is `self_`: `self` cannot be an identifier
    t.set_fn(true);
    t.set_struct("s");
    // `foo_mut` is a field, so foo's in-place accessor becomes `foo_mut_`.
    // `set_foo` is a field too, so foo's setter becomes `set_foo_`.
    t.set_foo_("a");
    t.foo_mut_().push('b');
    t.set_foo_mut("c");
    assert_eq!((t.foo(), t.foo_mut()), ("ab", "c"));
    t.set_set_foo(4);
    assert_eq!(t.set_foo(), 4);
    t.set_bar(2);
    t.set_has_bar(3);
    assert!(t.has_bar_());
    assert_eq!(t.has_bar(), 3);
    // A field named `changed_fields` does not hide the bookkeeping.
    t.set_changed_fields("x");
    assert_eq!(t.changed_fields(), "x");
    assert!(Persistent::changed_fields(&t).len() >= 10);
    t.set_loop("l");
    assert_eq!(t.r#loop(), "l");
    t.set_super_(pbpersist::Ref::new(pbpersist::Oid(1)));
    assert_eq!(t.super_(), Some(pbpersist::Ref::new(pbpersist::Oid(1))));
    assert_eq!(nopkg::Type::decode(t.encode_to_vec().as_slice()).unwrap(), t);
    assert_eq!(<nopkg::Type as Persistent>::TYPE_NAME, "type");
    let mut s = nopkg::Self_::default();
    s.set_crate_("c");
    assert_eq!(s.crate_(), "c");
}

#[test]
fn messages_with_more_than_64_fields_track_every_field() {
    let mut m = nopkg::Many::default();
    m.set_f70(70);
    m.set_f1(1);
    m.set_f64(64);
    m.set_f65(65);
    let changed: Vec<u32> = m.changed_fields().iter().map(|f| f.number).collect();
    assert_eq!(changed, vec![1, 64, 65, 70]);
    m.mark_unchanged();
    assert!(!m.is_changed());
}

#[test]
#[allow(deprecated)]
fn comments_become_docs_and_deprecation_carries_over() {
    use corpus::very::deeply::nested::package_name::v1::{Documented, Old, Phase};
    let d = Documented::new();
    let _ = (d.id(), d.count(), d.old());
    let _ = Old::new();
    let _ = Phase::Done;
    // The generated text itself is checked by the snapshot of deep_package.proto.
}

#[test]
fn repeated_numbers_decode_packed_or_unpacked_whatever_the_declaration() {
    use corpus::scalars::Scalars;
    // u_int32 (53) is declared unpacked, p_int32 (33) packed: each is fed the other form.
    let unpacked_as_packed = [0xaa, 0x03, 0x02, 0x05, 0x06]; // field 53, packed [5, 6]
    let packed_as_unpacked = [0x88, 0x02, 0x07, 0x88, 0x02, 0x08]; // field 33, two varints 7, 8
    let a = Scalars::decode(unpacked_as_packed.as_slice()).unwrap();
    assert_eq!(a.u_int32(), &[5, 6]);
    let b = Scalars::decode(packed_as_unpacked.as_slice()).unwrap();
    assert_eq!(b.p_int32(), &[7, 8]);
    // Written back in the declared form.
    assert_eq!(a.encode_to_vec(), vec![0xa8, 0x03, 0x05, 0xa8, 0x03, 0x06]);
    assert_eq!(b.encode_to_vec(), vec![0x8a, 0x02, 0x02, 0x07, 0x08]);
}
