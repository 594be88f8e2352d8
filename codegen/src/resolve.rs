//! Finds `.proto` files: the user's include directories, pbpersist's own
//! files (built in, so users need not copy them), then the well-known types.

use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver, IncludeFileResolver};
use std::path::Path;

/// pbpersist's own `.proto` files, by import name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("pbpersist/options.proto", include_str!("../../proto/pbpersist/options.proto")),
    ("pbpersist/record.proto", include_str!("../../proto/pbpersist/record.proto")),
    ("pbpersist/tree.proto", include_str!("../../proto/pbpersist/tree.proto")),
];

struct Builtin;

impl FileResolver for Builtin {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match BUILTIN.iter().find(|(n, _)| *n == name) {
            Some((n, source)) => File::from_source(n, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// The resolver for a compile with these include directories.
pub fn resolver(includes: &[impl AsRef<Path>]) -> ChainFileResolver {
    let mut chain = ChainFileResolver::new();
    for dir in includes {
        chain.add(IncludeFileResolver::new(dir.as_ref().to_path_buf()));
    }
    chain.add(Builtin);
    chain.add(GoogleFileResolver::new());
    chain
}
