//! Random messages of any type of the coverage corpus, built from its
//! descriptors: the input of the differential and interop tests.

use prost_reflect::{
    Cardinality, DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Syntax, Value,
};

/// The corpus files (`corpus/FILES`, without the Rust-name hazards, which the
/// prost reference leaves out), plus the example schema and descriptor.proto.
pub fn files() -> Vec<&'static str> {
    include_str!("../corpus/FILES")
        .lines()
        .filter(|l| !l.is_empty() && *l != "hazards.proto")
        .chain(["demo.proto", "google/protobuf/descriptor.proto"])
        .collect()
}

/// The corpus compiled into a descriptor pool.
pub fn pool() -> DescriptorPool {
    let dir = env!("CARGO_MANIFEST_DIR");
    // The compiler's own pool keeps custom option values, such as references' targets.
    let mut compiler = protox::Compiler::new([format!("{dir}/corpus"), format!("{dir}/../proto")]).unwrap();
    compiler.include_imports(true).open_files(files()).unwrap();
    compiler.descriptor_pool()
}

/// The editions test files (`tests/editions/`).
pub const EDITIONS: [&str; 3] = ["features2023.proto", "defaults2024.proto", "legacy2024.proto"];

/// The editions files as pbpersist-build sees them: lowered to proto2, so
/// that dynamic messages encode every feature (delimited fields as groups,
/// lists expanded or packed as resolved).
pub fn editions_pool() -> DescriptorPool {
    let dir = env!("CARGO_MANIFEST_DIR");
    let editions = std::path::Path::new(dir).join("editions");
    let files: Vec<_> = EDITIONS.iter().map(|f| editions.join(f)).collect();
    pbpersist_build::Config::new()
        .descriptor_pool(&files, &[editions.clone(), std::path::Path::new(dir).join("../proto")])
        .unwrap_or_else(|e| panic!("{e:?}"))
}

/// Every message type of the corpus, except map entries and pbpersist's
/// options (`Ref` and the index options) and `Record`, which are not stored
/// objects.
pub fn messages(pool: &DescriptorPool) -> Vec<MessageDescriptor> {
    pool.all_messages()
        .filter(|m| {
            !m.is_map_entry()
                && m.parent_file().name() != "pbpersist/options.proto"
                && m.full_name() != "pbpersist.Record"
        })
        .collect()
}

/// A small deterministic generator (xorshift), seeded by the caller.
#[derive(Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

pub fn random_message(desc: &MessageDescriptor, rng: &mut Rng, depth: u32) -> DynamicMessage {
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
            rng.next_u64() as f64 / 7.0
        }),
        Kind::Float => Value::F32(if edge {
            [f32::NAN, f32::NEG_INFINITY, -0.0, f32::MAX][rng.below(4) as usize]
        } else {
            rng.next_u64() as f32 / 3.0
        }),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(if edge { [i32::MIN, -1, 0][rng.below(3) as usize] } else { rng.next_u64() as i32 })
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(if edge { [i64::MIN, -1, 0][rng.below(3) as usize] } else { rng.next_u64() as i64 })
        }
        Kind::Uint32 | Kind::Fixed32 => Value::U32(if edge { u32::MAX } else { rng.next_u64() as u32 }),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(if edge { u64::MAX } else { rng.next_u64() }),
        Kind::Bool => Value::Bool(rng.chance(50)),
        Kind::String => {
            let alphabet = ['a', 'Z', ' ', 'é', '\u{1F600}', '"', '\0'];
            Value::String((0..rng.below(8)).map(|_| alphabet[rng.below(alphabet.len() as u64) as usize]).collect())
        }
        Kind::Bytes => Value::Bytes((0..rng.below(8)).map(|_| rng.next_u64() as u8).collect::<Vec<u8>>().into()),
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

/// Every `.proto` file under `dir`, sorted.
pub fn proto_files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "proto") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Checks that each message type of `pool` that `wanted` selects (but the
/// well-known types and map entries) has a generated type, and that `rounds`
/// random values of it re-encode through that type exactly as a reflective
/// decoder of the same descriptor re-encodes them. Returns how many types it
/// checked.
pub fn round_trip_every_message(
    pool: &DescriptorPool,
    wanted: impl Fn(&MessageDescriptor) -> bool,
    rounds: usize,
    rng: &mut Rng,
) -> usize {
    use prost::Message;
    let names: Vec<String> = pool
        .all_messages()
        .filter(|m| !m.is_map_entry() && pbpersist_build::WELL_KNOWN_TYPES.iter().all(|w| *w != m.full_name()))
        .filter(|m| wanted(m))
        .map(|m| m.full_name().to_owned())
        .collect();
    for name in &names {
        let entry = pbpersist::object::lookup_type(name).unwrap_or_else(|| panic!("{name} has no generated type"));
        let desc = pool.get_message_by_name(name).expect("listed from the pool");
        let maps = reaches_a_map(&desc);
        for _ in 0..rounds {
            let bytes = random_message(&desc, rng, 0).encode_to_vec();
            let round_trip = |b: &[u8]| (entry.decode)(bytes::Bytes::copy_from_slice(b)).unwrap().encode_state();
            let ours = round_trip(&bytes);
            let theirs = DynamicMessage::decode(desc.clone(), bytes.as_slice()).unwrap().encode_to_vec();
            if maps {
                // Map order is each runtime's own (the Python interop test
                // compares such bytes with Google's, order aside): both read
                // the other's bytes back to their own.
                let reread = DynamicMessage::decode(desc.clone(), ours.as_slice()).unwrap().encode_to_vec();
                assert_eq!(round_trip(&reread), ours, "{name} from {bytes:?}");
                assert_eq!(round_trip(&theirs), ours, "{name} from {bytes:?}");
            } else {
                assert_eq!(ours, theirs, "{name} from {bytes:?}");
            }
        }
    }
    names.len()
}

/// Whether a message or any message it holds has a map field.
pub fn reaches_a_map(desc: &MessageDescriptor) -> bool {
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![desc.clone()];
    while let Some(m) = stack.pop() {
        if !seen.insert(m.full_name().to_owned()) {
            continue;
        }
        for f in m.fields() {
            if f.is_map() {
                return true;
            }
            if let Kind::Message(inner) = f.kind() {
                stack.push(inner);
            }
        }
    }
    false
}
