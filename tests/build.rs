//! Generates the test schemas: pbpersist types for the corpora, and, where
//! the real-world schemas were fetched, those too.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    pbpersist_build::Config::new().resolve_conflicts("bank.ResolvingCounter", "crate::merge_counter").compile_protos(
        &[
            "../proto/demo.proto",
            "proto/evolution.proto",
            "proto/bank.proto",
            "proto/notes.proto",
            "proto/catalog.proto",
        ],
        &["../proto", "proto"],
    )?;

    // Two versions of one schema, as two programs would have them.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    for version in ["v1", "v2"] {
        pbpersist_build::Config::new()
            .out_dir(out_dir.join(version))
            .compile_protos(&[format!("proto/{version}/note.proto")], &["../proto", "proto"])?;
    }

    // The coverage corpus: every construct, in its own module tree so that
    // package paths nest as the packages do.
    println!("cargo:rerun-if-changed=corpus");
    let corpus: Vec<PathBuf> = corpus_files().iter().map(|f| PathBuf::from("corpus").join(f)).collect();
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("corpus");
    pbpersist_build::Config::new().out_dir(&out).include_file("_includes.rs").compile_protos(&corpus, &["corpus"])?;

    // Editions files, which protoc compiles for pbpersist-build.
    println!("cargo:rerun-if-changed=editions");
    pbpersist_build::Config::new().out_dir(out_dir.join("editions")).include_file("_includes.rs").compile_protos(
        &["editions/features2023.proto", "editions/defaults2024.proto", "editions/legacy2024.proto"],
        &["editions", "../proto"],
    )?;

    // A current protobuf release's own files (descriptor.proto with extension
    // declarations and its enum defaults, the language feature files), as
    // the protoc-bin-vendored crate ships them: protox cannot parse them, so
    // protoc compiles them.
    let release = protoc_bin_vendored::include_path()?;
    println!("cargo:rerun-if-changed={}", release.display());
    pbpersist_build::Config::new()
        .out_dir(out_dir.join("release"))
        .include_file("_includes.rs")
        .compile_protos(&release_files(&release)?, &[&release])?;

    // Real-world schemas with custom options everywhere (Google's API
    // annotations, field behaviour, resources, common types), when
    // `tests/fetch-real-protos` has unpacked them from their PyPI package.
    println!("cargo::rustc-check-cfg=cfg(real_protos)");
    println!("cargo:rerun-if-env-changed=PBPERSIST_REAL_PROTOS");
    if let Some(dir) = std::env::var_os("PBPERSIST_REAL_PROTOS").map(PathBuf::from) {
        println!("cargo:rerun-if-changed={}", dir.display());
        let files = release_files(&dir)?;
        let mut config = pbpersist_build::Config::new();
        // Their google.protobuf types (api.proto, type.proto) are the release's.
        for name in google_protobuf_types(&config.descriptor_pool(&files, &[&dir])?) {
            config.extern_path(&name, release_path(&name));
        }
        config.out_dir(out_dir.join("real")).include_file("_includes.rs").compile_protos(&files, &[&dir])?;
        println!("cargo:rustc-cfg=real_protos");
    }

    // prost names some hazards differently, so the reference leaves them out.
    let mut reference: Vec<PathBuf> =
        corpus_files().into_iter().filter(|f| f != "hazards.proto").map(PathBuf::from).collect();
    reference.push(PathBuf::from("../proto/demo.proto"));
    prost_reference(&reference)?;
    Ok(())
}

/// The full names of the messages and enums of package `google.protobuf`
/// that pbpersist does not provide itself.
fn google_protobuf_types(pool: &prost_reflect::DescriptorPool) -> Vec<String> {
    let messages = pool.all_messages().filter(|m| !m.is_map_entry()).map(|m| m.full_name().to_owned());
    let enums = pool.all_enums().map(|e| e.full_name().to_owned());
    messages
        .chain(enums)
        .filter(|n| n.starts_with("google.protobuf.") && !pbpersist_build::WELL_KNOWN_TYPES.contains(&n.as_str()))
        .collect()
}

/// Where the release's generated type for a `google.protobuf` name lives.
fn release_path(full_name: &str) -> String {
    use heck::{ToSnakeCase, ToUpperCamelCase};
    let parts: Vec<&str> = full_name.trim_start_matches("google.protobuf.").split('.').collect();
    let (name, parents) = parts.split_last().expect("a name");
    let mut path = String::from("crate::protobuf_release::google::protobuf");
    for p in parents {
        path.push_str("::");
        path.push_str(&p.to_snake_case());
    }
    format!("{path}::{}", name.to_upper_camel_case())
}

/// Every `.proto` file under `dir`, sorted.
fn release_files(dir: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "proto") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The corpus files, listed once in `corpus/FILES` for every test that uses them.
fn corpus_files() -> Vec<String> {
    include_str!("corpus/FILES").lines().map(str::to_owned).filter(|l| !l.is_empty()).collect()
}

/// prost types for the same schemas, for the differential wire test, and a
/// table from full message name to a prost decode-and-re-encode function.
fn prost_reference(files: &[PathBuf]) -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("prost");
    std::fs::create_dir_all(&out)?;
    let set =
        protox::Compiler::new(["corpus", "../proto"])?.include_imports(true).open_files(files)?.file_descriptor_set();
    // prost generates the google.protobuf types too (prost-types lags
    // descriptor.proto), so both sides compile the very same schemas.
    prost_build::Config::new().btree_map(["."]).compile_well_known_types().out_dir(&out).compile_fds(set.clone())?;

    let mut arms = String::new();
    for file in &set.file {
        let mods: Vec<String> = file.package().split('.').filter(|s| !s.is_empty()).map(snake).collect();
        for msg in &file.message_type {
            dispatch_arms(&mut arms, file.package(), &mods, msg, "crate::prost_reference");
        }
    }
    let code = format!(
        "/// Decodes `bytes` as the prost type of `name` and encodes it again.\n\
         pub fn prost_round_trip(name: &str, bytes: &[u8]) -> Option<Result<Vec<u8>, prost::DecodeError>> {{\n\
         use prost::Message;\nmatch name {{\n{arms}_ => None,\n}}\n}}\n"
    );
    std::fs::write(out.join("dispatch.rs"), code)?;
    Ok(())
}

fn snake(s: &str) -> String {
    use heck::ToSnakeCase;
    let s = s.to_snake_case();
    if ["type", "fn", "match", "loop", "ref", "mod", "struct", "enum", "use"].contains(&s.as_str()) {
        format!("r#{s}")
    } else {
        s
    }
}

fn dispatch_arms(out: &mut String, scope: &str, mods: &[String], msg: &prost_types::DescriptorProto, root: &str) {
    use heck::ToUpperCamelCase;
    if msg.options.as_ref().is_some_and(|o| o.map_entry()) {
        return;
    }
    let full = if scope.is_empty() { msg.name().to_owned() } else { format!("{scope}.{}", msg.name()) };
    let path: Vec<String> = std::iter::once(root.to_owned()).chain(mods.iter().cloned()).collect();
    out.push_str(&format!(
        "{full:?} => Some({}::{}::decode(bytes).map(|m| m.encode_to_vec())),\n",
        path.join("::"),
        msg.name().to_upper_camel_case()
    ));
    let mut inner = mods.to_vec();
    inner.push(snake(msg.name()));
    for nested in &msg.nested_type {
        dispatch_arms(out, &full, &inner, nested, root);
    }
}
