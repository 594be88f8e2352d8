//! Errors in #[derive(Persistent)] point at the offending token.

#[test]
fn derive_errors() {
    trybuild::TestCases::new().compile_fail("ui/*.rs");
}
