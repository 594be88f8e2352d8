//! The include file: every generated package's file, in the module tree
//! its package names, so a crate needs one `include!` for all of them.

use crate::{Error, GeneratedFile, HEADER, file_name, names, package_prefix};
use proc_macro2::TokenStream;
use quote::quote;
use std::collections::BTreeSet;

/// The include file `name` for `packages`.
pub fn render(name: &str, packages: &[String]) -> Result<GeneratedFile, Error> {
    let paths: BTreeSet<Vec<String>> = packages.iter().map(|p| package_prefix(p)).collect();
    let tokens = module(&[], &paths, packages);
    let file: syn::File =
        syn::parse2(tokens).map_err(|e| Error::Internal { file: name.to_owned(), message: e.to_string() })?;
    let content = format!("{HEADER}\n\n{}", prettyplease::unparse(&file));
    Ok(GeneratedFile { name: name.to_owned(), content })
}

/// The items of the module at `path`: its package's file, if any, then the
/// modules below it.
fn module(path: &[String], paths: &BTreeSet<Vec<String>>, packages: &[String]) -> TokenStream {
    let own = packages.iter().find(|p| package_prefix(p) == path).map(|p| {
        let file = file_name(p);
        quote!(include!(#file);)
    });
    let mut children: Vec<&String> =
        paths.iter().filter(|p| p.len() > path.len() && p.starts_with(path)).map(|p| &p[path.len()]).collect();
    children.dedup();
    let children = children.into_iter().map(|child| {
        let inner_path: Vec<String> = path.iter().cloned().chain([child.clone()]).collect();
        let inner = module(&inner_path, paths, packages);
        let ident = names::ident(child);
        let doc = format!(" The `{}` protobuf package and the packages below it.", inner_path.join("."));
        quote! {
            #[doc = #doc]
            pub mod #ident { #inner }
        }
    });
    quote! { #own #(#children)* }
}
