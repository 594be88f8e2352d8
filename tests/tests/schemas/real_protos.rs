//! Real-world schemas: Google's API annotations (`google.api.http`,
//! `field_behavior`, `resource`, client options), common types, status and
//! long-running operations, from the PyPI package googleapis-common-protos
//! (`tests/fetch-real-protos`). Custom options are everywhere in them. Every
//! message compiles to a generated type and round-trips as a reflective
//! decoder of the same descriptors reads it.
//!
//! Needs `PBPERSIST_REAL_PROTOS` (at build time) naming the unpacked files;
//! without it the test says so, and fails if `PBPERSIST_REQUIRE_REAL_PROTOS=1`.

#[test]
fn every_real_world_message_round_trips() {
    let Some(dir) = option_env!("PBPERSIST_REAL_PROTOS") else {
        assert!(
            std::env::var_os("PBPERSIST_REQUIRE_REAL_PROTOS").is_none(),
            "PBPERSIST_REAL_PROTOS was not set when the tests were built"
        );
        eprintln!("skipped: build with PBPERSIST_REAL_PROTOS=<dir> after tests/fetch-real-protos <dir>");
        return;
    };
    use pbpersist_tests::random::{Rng, proto_files_under, round_trip_every_message};
    let dir = std::path::Path::new(dir);
    let files = proto_files_under(dir);
    assert!(files.len() > 50, "{} files under {}", files.len(), dir.display());
    let pool = pbpersist_build::Config::new().descriptor_pool(&files, &[dir]).unwrap_or_else(|e| panic!("{e:?}"));
    // The google.protobuf types they import are the release's, which
    // `protobuf_release.rs` checks against its own, newer descriptors.
    let theirs = |m: &prost_reflect::MessageDescriptor| !m.parent_file().name().starts_with("google/protobuf/");
    let checked = round_trip_every_message(&pool, theirs, 10, &mut Rng(0x9e41_0000_0000_0001));
    assert!(checked > 100, "{checked} messages");
}

/// The HTTP annotation of a method is read from the descriptors, as a
/// gateway would read it, while the request message it annotates is an
/// ordinary persistent type.
#[cfg(real_protos)]
#[test]
fn annotations_are_options_and_their_messages_are_types() {
    use pbpersist::Persistent;
    use pbpersist_tests::real_protos::google::api::{HttpRule, http_rule::Pattern};
    let mut rule = HttpRule::default();
    rule.set_pattern(Pattern::Get("/v1/{name=shelves/*}".into()));
    assert_eq!(<HttpRule as Persistent>::TYPE_NAME, "google.api.HttpRule");
    assert!(rule.is_changed());
}
