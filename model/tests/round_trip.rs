//! `print` and `parse` are inverses: the code generator's output parses back
//! into the model it came from, so the derive sees what the generator meant.

use pbpersist_model::{parse, print};
use syn::DeriveInput;

fn round_trip(input: DeriveInput) {
    let model = parse::message(&input).expect("the input parses");
    let printed: DeriveInput = syn::parse2(print::message(&model)).expect("printed items parse as Rust");
    let again = parse::message(&printed).expect("printed items parse as a model");
    assert_eq!(model, again);
}

#[test]
fn every_field_kind_round_trips() {
    round_trip(syn::parse_quote! {
        /// Docs survive.
        #[pbpersist(message = "pkg.Everything", former_name = "old.Everything", resolve_conflicts = "merge")]
        struct Everything {
            #[pbpersist(tag = 1, required, string, default = "x")]
            name: Option<String>,
            #[pbpersist(tag = 2, optional, float, default = -1.5)]
            width: Option<f32>,
            #[pbpersist(tag = 3, optional, double, default = "inf")]
            big: Option<f64>,
            #[pbpersist(tag = 4, optional, sint64, default = -9)]
            small: Option<i64>,
            #[pbpersist(tag = 5, optional, bytes, default = b"\x00ab")]
            raw: Option<Vec<u8>>,
            #[pbpersist(tag = 6, uint32)]
            implicit: u32,
            #[pbpersist(tag = 7, repeated, int32, packed)]
            numbers: Vec<i32>,
            #[deprecated]
            #[pbpersist(tag = 8, optional, message, boxed)]
            child: Option<Box<Everything>>,
            #[pbpersist(tag = 9, repeated, reference)]
            links: Vec<pbpersist::Ref<Other>>,
            #[pbpersist(tag = 10, optional, enumeration, default = 2)]
            color: Option<pbpersist::EnumValue<Color>>,
            #[pbpersist(tag = 11, map(int64, message))]
            by_id: BTreeMap<i64, Other>,
            #[pbpersist(oneof(member(name = "text", tag = 12, string), member(name = "other", tag = 13, message = "Other", boxed), member(name = "ref", tag = 14, variant = "Link", reference = "super::Other")), name = "choice")]
            r#choice: Option<everything::Choice>,
            #[pbpersist(tag = 15, bool, name = "type")]
            r#type: bool,
            #[pbpersist(meta)]
            meta: pbpersist::Meta,
        }
    });
}

#[test]
fn enums_round_trip() {
    let input: DeriveInput = syn::parse_quote! {
        #[pbpersist(enumeration = "pkg.Color")]
        enum Color {
            #[pbpersist(name = "COLOR_RED")]
            Red = 0,
            /// Green.
            #[pbpersist(name = "COLOR_GREEN")]
            Green = -2,
        }
    };
    let model = parse::enumeration(&input).unwrap();
    let printed: DeriveInput = syn::parse2(print::enumeration(&model)).unwrap();
    assert_eq!(parse::enumeration(&printed).unwrap(), model);
}

#[test]
fn errors_point_at_the_offending_token() {
    let cases: Vec<(DeriveInput, &str)> = vec![
        (
            syn::parse_quote! { struct A { #[pbpersist(string)] a: String, #[pbpersist(meta)] m: Meta } },
            "missing `tag = N`",
        ),
        (
            syn::parse_quote! { struct A { #[pbpersist(tag = 1, int32)] a: i32, #[pbpersist(tag = 1, int32)] b: i32, #[pbpersist(meta)] m: Meta } },
            "duplicate tag 1",
        ),
        (
            syn::parse_quote! { struct A { #[pbpersist(tag = 1, float32)] a: f32, #[pbpersist(meta)] m: Meta } },
            "unknown option `float32`",
        ),
        (
            syn::parse_quote! { struct A { #[pbpersist(tag = 1, int32, default = "x")] a: i32, #[pbpersist(meta)] m: Meta } },
            "expected an integer",
        ),
        (syn::parse_quote! { struct A { #[pbpersist(tag = 1, int32)] a: i32 } }, "bookkeeping field"),
        (
            syn::parse_quote! { struct A { #[pbpersist(tag = 1, optional, int32)] a: i32, #[pbpersist(meta)] m: Meta } },
            "must have type `Option<T>`",
        ),
    ];
    for (input, expected) in cases {
        let err = parse::message(&input).expect_err(expected).to_string();
        assert!(err.contains(expected), "{err:?} should mention {expected:?}");
    }
}
