//! Placeholder impls emitted beside a derive's errors, so the compiler reports
//! the mistake in the attributes and not every use of the type after it.
//! The bodies are never run: the crate does not compile while the errors stand.

use proc_macro2::TokenStream;
use quote::quote;
use syn::DeriveInput;

/// `impls` in a block that names the runtime, with `Default` (which both
/// derives write); nothing for an item no placeholder fits (generic ones).
fn block(input: &DeriveInput, krate: Option<&syn::Path>, impls: TokenStream) -> TokenStream {
    if !input.generics.params.is_empty() || matches!(input.data, syn::Data::Union(_)) {
        return TokenStream::new();
    }
    let ident = &input.ident;
    let krate = crate::types::krate(krate);
    quote! {
        const _: () = {
            use #krate as __pbpersist;
            impl ::core::default::Default for #ident {
                fn default() -> Self { ::core::unimplemented!() }
            }
            #impls
        };
    }
}

/// `Default`, `Debug`, `prost::Message` and `Persistent` for a struct whose
/// derive failed.
pub fn message(input: &DeriveInput, krate: Option<&syn::Path>) -> TokenStream {
    let ident = &input.ident;
    let impls = quote! {
        impl ::core::fmt::Debug for #ident {
            fn fmt(&self, _: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result { ::core::unimplemented!() }
        }
        impl __pbpersist::__private::prost::Message for #ident {
            fn encode_raw(&self, _: &mut impl __pbpersist::__private::bytes::BufMut) { ::core::unimplemented!() }
            fn merge_field(
                &mut self,
                _: u32,
                _: __pbpersist::__private::prost::encoding::WireType,
                _: &mut impl __pbpersist::__private::bytes::Buf,
                _: __pbpersist::__private::prost::encoding::DecodeContext,
            ) -> ::core::result::Result<(), __pbpersist::__private::prost::DecodeError> {
                ::core::unimplemented!()
            }
            fn encoded_len(&self) -> usize { ::core::unimplemented!() }
            fn clear(&mut self) { ::core::unimplemented!() }
        }
        impl __pbpersist::Persistent for #ident {
            const TYPE_NAME: &'static str = "";
            const FIELDS: &'static [__pbpersist::object::FieldInfo] = &[];
            fn default_instance() -> &'static Self { ::core::unimplemented!() }
            fn meta(&self) -> &__pbpersist::Meta { ::core::unimplemented!() }
            fn meta_mut(&mut self) -> &mut __pbpersist::Meta { ::core::unimplemented!() }
            fn visit_refs(&self, _: &mut dyn ::core::ops::FnMut(__pbpersist::Oid)) { ::core::unimplemented!() }
            fn check_required(&self) -> ::core::result::Result<(), __pbpersist::object::RequiredFieldError> {
                ::core::unimplemented!()
            }
            fn describe_schema(_: &mut __pbpersist::schema::ProtoSchema) { ::core::unimplemented!() }
            fn mark_unchanged(&mut self) { ::core::unimplemented!() }
        }
    };
    block(input, krate, impls)
}

/// `Default` and `Enumeration` for an enum whose derive failed.
pub fn enumeration(input: &DeriveInput, krate: Option<&syn::Path>) -> TokenStream {
    if !matches!(input.data, syn::Data::Enum(_)) {
        return TokenStream::new();
    }
    let ident = &input.ident;
    let impls = quote! {
        impl __pbpersist::Enumeration for #ident {
            const TYPE_NAME: &'static str = "";
            const VALUES: &'static [Self] = &[];
            fn from_i32(_: i32) -> ::core::option::Option<Self> { ::core::unimplemented!() }
            fn to_i32(self) -> i32 { ::core::unimplemented!() }
            fn proto_name(self) -> &'static str { ::core::unimplemented!() }
            fn from_proto_name(_: &str) -> ::core::option::Option<Self> { ::core::unimplemented!() }
            fn describe_schema(_: &mut __pbpersist::schema::ProtoSchema) { ::core::unimplemented!() }
        }
    };
    block(input, krate, impls)
}
