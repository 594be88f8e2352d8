//! Differential wire tests: for every message of the corpus, random values
//! decoded and re-encoded by pbpersist's generated type give exactly the bytes
//! prost's generated type gives for the same schema; and a program that knows
//! none of the fields keeps them all, byte for byte.

use pbpersist::wkt::Empty;
use pbpersist_tests::prost_reference::prost_round_trip;
use proptest::prelude::*;
use prost::Message;
use prost_reflect::{
    Cardinality, DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Syntax, Value,
};

const FILES: &[&str] = &[
    "scalars.proto",
    "proto3.proto",
    "nested.proto",
    "enums.proto",
    "oneofs.proto",
    "maps.proto",
    "groups.proto",
    "wkt.proto",
    "c/d.proto",
    "a/b/uses.proto",
    "deep_package.proto",
    "demo.proto",
    "google/protobuf/descriptor.proto",
];

fn pool() -> DescriptorPool {
    let dir = env!("CARGO_MANIFEST_DIR");
    let set = protox::compile(FILES, [format!("{dir}/corpus"), format!("{dir}/../proto")]).unwrap();
    DescriptorPool::from_file_descriptor_set(set).unwrap()
}

/// Every message type of the corpus (map entries are not types of their own).
/// pbpersist's own `Ref` and `Record` are runtime types, not generated ones.
fn messages(pool: &DescriptorPool) -> Vec<MessageDescriptor> {
    pool.all_messages()
        .filter(|m| !m.is_map_entry() && !["pbpersist.Ref", "pbpersist.Record"].contains(&m.full_name()))
        .collect()
}

/// A small deterministic generator, seeded by proptest.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn random_message(desc: &MessageDescriptor, rng: &mut Rng, depth: u32) -> DynamicMessage {
    let mut msg = DynamicMessage::new(desc.clone());
    for field in desc.fields() {
        let required = field.cardinality() == Cardinality::Required;
        if !required && (depth > 3 || !rng.chance(60)) {
            continue;
        }
        if field.containing_oneof().is_some_and(|o| !o.is_synthetic()) && !rng.chance(40) {
            continue;
        }
        let value = if field.is_map() {
            let Kind::Message(entry) = field.kind() else { unreachable!() };
            let (k, v) = (entry.map_entry_key_field(), entry.map_entry_value_field());
            let mut map = std::collections::HashMap::new();
            for _ in 0..rng.below(4) {
                let key = match random_value(&k, rng, depth) {
                    Value::Bool(b) => MapKey::Bool(b),
                    Value::I32(i) => MapKey::I32(i),
                    Value::I64(i) => MapKey::I64(i),
                    Value::U32(i) => MapKey::U32(i),
                    Value::U64(i) => MapKey::U64(i),
                    Value::String(s) => MapKey::String(s),
                    other => panic!("not a map key: {other:?}"),
                };
                map.insert(key, random_value(&v, rng, depth + 1));
            }
            Value::Map(map)
        } else if field.is_list() {
            Value::List((0..rng.below(4)).map(|_| random_value(&field, rng, depth + 1)).collect())
        } else {
            random_value(&field, rng, depth + 1)
        };
        msg.set_field(&field, value);
    }
    msg
}

fn random_value(field: &FieldDescriptor, rng: &mut Rng, depth: u32) -> Value {
    let edge = rng.chance(20);
    match field.kind() {
        Kind::Double => Value::F64(if edge {
            [f64::NAN, f64::INFINITY, -0.0, f64::MIN][rng.below(4) as usize]
        } else {
            rng.next() as f64 / 7.0
        }),
        Kind::Float => Value::F32(if edge {
            [f32::NAN, f32::NEG_INFINITY, -0.0, f32::MAX][rng.below(4) as usize]
        } else {
            rng.next() as f32 / 3.0
        }),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(if edge { [i32::MIN, -1, 0][rng.below(3) as usize] } else { rng.next() as i32 })
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(if edge { [i64::MIN, -1, 0][rng.below(3) as usize] } else { rng.next() as i64 })
        }
        Kind::Uint32 | Kind::Fixed32 => Value::U32(if edge { u32::MAX } else { rng.next() as u32 }),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(if edge { u64::MAX } else { rng.next() }),
        Kind::Bool => Value::Bool(rng.chance(50)),
        Kind::String => {
            let alphabet = ['a', 'Z', ' ', 'é', '\u{1F600}', '"', '\0'];
            Value::String((0..rng.below(8)).map(|_| alphabet[rng.below(alphabet.len() as u64) as usize]).collect())
        }
        Kind::Bytes => Value::Bytes((0..rng.below(8)).map(|_| rng.next() as u8).collect::<Vec<u8>>().into()),
        Kind::Enum(e) => {
            let open = e.parent_file().syntax() == Syntax::Proto3;
            if open && rng.chance(10) {
                // An open enum keeps numbers it does not know in the field.
                Value::EnumNumber(1000 + rng.below(1000) as i32)
            } else {
                let values: Vec<i32> = e.values().map(|v| v.number()).collect();
                Value::EnumNumber(values[rng.below(values.len() as u64) as usize])
            }
        }
        Kind::Message(m) => Value::Message(random_message(&m, rng, depth)),
    }
}

fn ours_round_trip(name: &str, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let entry = pbpersist::lookup_type(name).ok_or_else(|| format!("{name} is not registered"))?;
    let obj = (entry.decode)(bytes).map_err(|e| e.to_string())?;
    Ok(obj.encode_state())
}

#[test]
fn every_corpus_message_has_both_a_pbpersist_and_a_prost_type() {
    let pool = pool();
    let all = messages(&pool);
    assert!(all.len() > 60, "{} messages", all.len());
    for m in all {
        assert!(pbpersist::lookup_type(m.full_name()).is_some(), "{} has no pbpersist type", m.full_name());
        assert!(prost_round_trip(m.full_name(), &[]).is_some(), "{} has no prost type", m.full_name());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn pbpersist_and_prost_write_identical_bytes(seed in any::<u64>()) {
        let pool = pool();
        let mut rng = Rng(seed | 1);
        for desc in messages(&pool) {
            let name = desc.full_name();
            let bytes = random_message(&desc, &mut rng, 0).encode_to_vec();
            let ours = ours_round_trip(name, &bytes);
            let theirs = prost_round_trip(name, &bytes).unwrap().map_err(|e| e.to_string());
            prop_assert_eq!(&ours, &theirs, "{} from {:?}", name, bytes);
            // And the other way: pbpersist reads prost's bytes back to the same bytes.
            let theirs = theirs.unwrap();
            prop_assert_eq!(ours_round_trip(name, &theirs).unwrap(), theirs, "{}", name);
        }
    }

    #[test]
    fn a_program_that_knows_no_field_keeps_every_field(seed in any::<u64>()) {
        let pool = pool();
        let mut rng = Rng(seed | 1);
        for desc in messages(&pool) {
            let bytes = random_message(&desc, &mut rng, 0).encode_to_vec();
            let empty = Empty::decode(bytes.as_slice()).unwrap();
            prop_assert_eq!(empty.encode_to_vec(), bytes, "{}", desc.full_name());
        }
    }
}
