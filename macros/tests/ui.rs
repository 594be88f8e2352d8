//! Derive errors: one trybuild case per distinct message of
//! `#[derive(Persistent)]` and `#[derive(Enumeration)]` (`tests/ui/`), each
//! pointing at the offending token and saying what to write instead, with no
//! follow-on errors from uses of the type.

#[test]
fn derive_errors() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
