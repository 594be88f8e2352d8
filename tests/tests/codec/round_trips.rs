//! Property tests: any value of a generated type survives encoding, decoding
//! and a trip through a database.

use pbpersist::{Database, Oid, Persistent, Ref};
use pbpersist_tests::demo::{Address, Contact, Tower, contact};
use proptest::prelude::*;
use prost::Message;

fn tower() -> impl Strategy<Value = Tower> {
    (any::<String>(), any::<f32>(), any::<f32>(), proptest::option::of(any::<i32>()), proptest::option::of(1u64..1000))
        .prop_map(|(name, w, h, year, neighbor)| {
            let mut t = Tower::new();
            t.set_name(name);
            t.set_width(w);
            t.set_height(h);
            if let Some(y) = year {
                t.set_build_year(y);
            }
            if let Some(n) = neighbor {
                t.set_neighbor(Ref::new(Oid(n)));
            }
            t.mark_unchanged();
            t
        })
}

fn contact() -> impl Strategy<Value = Contact> {
    (
        any::<String>(),
        proptest::option::of((any::<String>(), any::<String>())),
        proptest::collection::vec(0u64..1 << 40, 0..5),
        proptest::collection::btree_map(any::<String>(), any::<String>(), 0..4),
        proptest::option::of(-3i32..3),
        0u8..4,
    )
        .prop_map(|(name, address, guardians, labels, kind, reach)| {
            let mut c = Contact::new();
            c.set_name(name);
            if let Some((city, country)) = address {
                let a: &mut Address = c.address_mut();
                a.set_city(city);
                a.set_country(country);
            }
            c.guardians_mut().extend(guardians.into_iter().map(|g| Ref::new(Oid(g))));
            *c.labels_mut() = labels;
            if let Some(k) = kind {
                c.set_kind(contact::Kind::Organization);
                if k < 0 {
                    c.clear_kind();
                }
            }
            match reach {
                1 => c.set_phone("555"),
                2 => c.postal_mut().set_zip("12345"),
                3 => c.set_agent(Ref::new(Oid(3))),
                _ => {}
            }
            c.mark_unchanged();
            c
        })
}

fn records() -> impl Strategy<Value = pbpersist::record::Record> {
    (any::<String>(), proptest::collection::vec(any::<u8>(), 0..64), proptest::collection::vec(any::<u64>(), 0..8))
        .prop_map(|(t, state, refs)| pbpersist::record::Record { r#type: t, state: state.into(), refs })
}

fn same_bits(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits()
}

proptest! {
    #[test]
    fn towers_round_trip_through_bytes(t in tower()) {
        let back = Tower::decode(t.encode_to_vec().as_slice()).unwrap();
        prop_assert_eq!(back.name(), t.name());
        prop_assert!(same_bits(back.width(), t.width()) && same_bits(back.height(), t.height()));
        prop_assert_eq!(back.build_year_opt(), t.build_year_opt());
        prop_assert_eq!(back.neighbor(), t.neighbor());
        prop_assert_eq!(back.encode_to_vec(), t.encode_to_vec());
    }

    #[test]
    fn contacts_round_trip_through_bytes(c in contact()) {
        let back = Contact::decode(c.encode_to_vec().as_slice()).unwrap();
        prop_assert_eq!(&back, &c);
        prop_assert_eq!(back.refs(), c.refs());
    }

    #[test]
    fn records_round_trip(r in records()) {
        let back = pbpersist::record::Record::from_bytes(r.encode_to_vec().into()).unwrap();
        prop_assert_eq!(back, r);
    }

    #[test]
    fn any_bytes_decode_to_a_record_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let _ = pbpersist::record::Record::from_bytes(bytes.clone().into());
        let _ = Contact::decode(bytes.as_slice());
    }

    #[test]
    fn contacts_round_trip_through_a_database(c in contact()) {
        let db = Database::in_memory().unwrap();
        let r = db.transact(|tx| tx.add(c.clone())).unwrap();
        let mut conn = db.connect().unwrap();
        let mut tx = conn.begin().unwrap();
        let loaded = tx.get(r).unwrap();
        prop_assert_eq!(&*loaded, &c);
        prop_assert!(!loaded.is_changed());
    }
}
