//! Snapshot tests of generated code.

use std::path::Path;

fn proto_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../proto"))
}

fn generate(file: &str) -> String {
    let files = pbpersist_build::Config::new()
        .cargo_directives(false)
        .generate(&[proto_dir().join(file)], &[proto_dir()])
        .unwrap_or_else(|e| panic!("{e:?}"));
    files.into_iter().map(|f| format!("==> {}\n{}", f.name, f.content)).collect()
}

#[test]
fn seed_tower_schema() {
    insta::assert_snapshot!(generate("seed/tower.proto"));
}

#[test]
fn demo_schema() {
    insta::assert_snapshot!(generate("demo.proto"));
}

/// `pbpersist::wkt` is code this generator wrote; it must match what the
/// generator writes now. `PBPERSIST_BLESS=1` rewrites it.
#[test]
fn the_runtime_well_known_types_are_current() {
    let files = pbpersist_build::Config::new()
        .cargo_directives(false)
        .generate_well_known_types()
        .generate(pbpersist_build::WELL_KNOWN_FILES, &[] as &[&str])
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].name, "google.protobuf.rs");
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../runtime/src/wkt/generated.rs"));
    if std::env::var_os("PBPERSIST_BLESS").is_some() {
        std::fs::write(path, &files[0].content).unwrap();
    }
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(on_disk == files[0].content, "runtime/src/wkt/generated.rs is stale: run with PBPERSIST_BLESS=1");
}

/// The coverage corpus's directory and every file it lists in `FILES`.
fn corpus_files() -> (std::path::PathBuf, Vec<std::path::PathBuf>) {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus");
    let files = std::fs::read_to_string(corpus.join("FILES"))
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| corpus.join(l))
        .collect();
    (corpus, files)
}

fn generate_corpus(file: &str) -> String {
    let corpus = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/corpus"));
    let files = pbpersist_build::Config::new()
        .cargo_directives(false)
        .generate(&[corpus.join(file)], &[corpus, proto_dir()])
        .unwrap_or_else(|e| panic!("{e:?}"));
    files.into_iter().map(|f| format!("==> {}\n{}", f.name, f.content)).collect()
}

#[test]
fn rust_name_hazards() {
    insta::assert_snapshot!(generate_corpus("hazards.proto"));
}

#[test]
fn comments_deprecation_and_deep_packages() {
    insta::assert_snapshot!(generate_corpus("deep_package.proto"));
}

#[test]
fn aliases_and_closed_enums() {
    insta::assert_snapshot!(generate_corpus("enums.proto"));
}

fn generate_from(dir: &str, files: &[&str]) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests").join(dir);
    let paths: Vec<_> = files.iter().map(|f| dir.join(f)).collect();
    let files = pbpersist_build::Config::new()
        .cargo_directives(false)
        .generate(&paths, &[dir.as_path(), proto_dir()])
        .unwrap_or_else(|e| panic!("{e:?}"));
    files.into_iter().map(|f| format!("==> {}\n{}", f.name, f.content)).collect()
}

/// Editions files: presence, list encoding, delimited messages and enum
/// openness resolved per field (through protoc, which protox cannot replace here).
#[test]
fn editions() {
    insta::assert_snapshot!(generate_from(
        "editions",
        &["features2023.proto", "defaults2024.proto", "legacy2024.proto"]
    ));
}

/// Custom options generate no code of their own (`descriptor.proto`,
/// imported for them, gets none either); extensions of a user message get a
/// constant each, except the one that holds a reference.
#[test]
fn custom_options_and_extensions() {
    insta::assert_snapshot!(generate_from("corpus", &["annotated.proto"]));
}

/// Custom options change nothing in what a message becomes: the annotated
/// schema generates what the same schema without its options does.
#[test]
fn options_do_not_change_generated_code() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus");
    let annotated = std::fs::read_to_string(corpus.join("annotated.proto")).unwrap();
    let plain = strip_annotations(&annotated);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("annotated.proto"), &plain).unwrap();
    let generate = |dir: &Path| {
        let files = pbpersist_build::Config::new()
            .cargo_directives(false)
            .generate(&[dir.join("annotated.proto")], &[dir, proto_dir()])
            .unwrap_or_else(|e| panic!("{e:?}"));
        files.into_iter().map(|f| f.content.lines().skip(2).collect::<Vec<_>>().join("\n")).collect::<Vec<_>>()
    };
    assert!(!plain.contains("annotations"), "every annotation is stripped:\n{plain}");
    assert_eq!(generate(&corpus), generate(dir.path()));
}

/// The schema without its custom options and its service.
fn strip_annotations(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth = 0usize;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if skip_depth > 0 || trimmed.starts_with("service ") {
            skip_depth += line.matches('{').count();
            skip_depth = skip_depth.saturating_sub(line.matches('}').count());
            continue;
        }
        if trimmed.starts_with("option (") || trimmed.starts_with("import \"annotations") {
            continue;
        }
        // Field options other than pbpersist's own.
        let line = match (line.find(" [(corpus"), line.rfind(';')) {
            (Some(start), Some(end)) if start < end => format!("{};", &line[..start]),
            _ => line.to_owned(),
        };
        let line = match (line.find(" [(corpus.annotations.label)"), line.rfind(';')) {
            (Some(start), Some(end)) if start < end => format!("{};", &line[..start]),
            _ => line,
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// protox and protoc are interchangeable where both parse: the coverage
/// corpus gives the same code through either.
#[cfg(feature = "vendored-protoc")]
#[test]
fn protox_and_protoc_generate_the_same_code() {
    let (corpus, files) = corpus_files();
    let includes = [corpus.as_path(), proto_dir()];
    let mut config = pbpersist_build::Config::new();
    config.cargo_directives(false);
    let by_protox = config.generate(&files, &includes).unwrap_or_else(|e| panic!("{e:?}"));
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path().unwrap());
    let by_protoc = config.generate(&files, &includes).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(by_protox.len(), by_protoc.len());
    for (a, b) in by_protox.iter().zip(&by_protoc) {
        assert_eq!(a, b, "{}", a.name);
    }
}

/// An imported file is generated when a generated field or a requested
/// service uses its types, and not when it is imported for options alone.
#[test]
fn imports_are_generated_when_their_types_are_used() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("rpc.proto", "syntax = \"proto3\";\npackage rpc;\nmessage Req {}\nmessage Resp {}\n");
    write("unused.proto", "syntax = \"proto3\";\npackage unused;\nmessage Spare {}\n");
    write(
        "svc.proto",
        "syntax = \"proto3\";\npackage svc;\nimport \"rpc.proto\";\nimport \"unused.proto\";\nservice S { rpc Call(rpc.Req) returns (rpc.Resp); }\n",
    );
    let files = pbpersist_build::Config::new()
        .cargo_directives(false)
        .generate(&[dir.path().join("svc.proto")], &[dir.path()])
        .unwrap_or_else(|e| panic!("{e:?}"));
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["rpc.rs", "svc.rs"]);
}

/// A descriptor set from protoc (`--include_imports`, as buf and protoc
/// users have one) generates what the `.proto` files generate.
#[cfg(feature = "vendored-protoc")]
#[test]
fn a_descriptor_set_generates_what_its_files_generate() {
    let editions = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/editions");
    let files = ["features2023.proto", "defaults2024.proto", "legacy2024.proto"];
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("set.binpb");
    let status = std::process::Command::new(protoc_bin_vendored::protoc_bin_path().unwrap())
        .arg(format!("-I{}", editions.display()))
        .arg(format!("-I{}", proto_dir().display()))
        .arg(format!("-I{}", protoc_bin_vendored::include_path().unwrap().display()))
        .args(["--include_imports", "--include_source_info"])
        .arg(format!("--descriptor_set_out={}", set.display()))
        .args(files)
        .status()
        .unwrap();
    assert!(status.success());
    let mut config = pbpersist_build::Config::new();
    config.cargo_directives(false);
    let from_set = config.generate_fds(&std::fs::read(&set).unwrap()).unwrap_or_else(|e| panic!("{e:?}"));
    let paths: Vec<_> = files.iter().map(|f| editions.join(f)).collect();
    let from_files = config.generate(&paths, &[editions.as_path(), proto_dir()]).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(from_set, from_files);
}

/// Generated code and the derive share one checked path: every message and
/// enum the generator prints, for every corpus file, parses back through
/// the derive's parser (which runs all its checks) into a model that prints
/// as the same item.
#[test]
fn printed_items_parse_back_to_themselves() {
    let (corpus, files) = corpus_files();
    let generated = pbpersist_build::Config::new()
        .cargo_directives(false)
        .generate(&files, &[corpus.as_path(), proto_dir()])
        .unwrap_or_else(|e| panic!("{e:?}"));
    // Compared as formatted code: the printer's tokens and prettyplease's
    // output differ only in trailing commas.
    let fmt = |tokens: proc_macro2::TokenStream| prettyplease::unparse(&syn::parse_quote!(#tokens));
    let (mut messages, mut enums) = (0, 0);
    for file in generated {
        let parsed = syn::parse_file(&file.content).unwrap_or_else(|e| panic!("{}: {e}", file.name));
        let mut items = parsed.items;
        while let Some(item) = items.pop() {
            let derives = |attrs: &[syn::Attribute], name: &str| {
                attrs.iter().any(|a| a.path().is_ident("derive") && quote::quote!(#a).to_string().contains(name))
            };
            match item {
                syn::Item::Mod(m) => items.extend(m.content.map(|c| c.1).unwrap_or_default()),
                syn::Item::Struct(s) if derives(&s.attrs, "Persistent") => {
                    let input: syn::DeriveInput = syn::parse_quote!(#s);
                    let model = pbpersist_model::parse::message(&input)
                        .unwrap_or_else(|e| panic!("{}: {}: {e}", file.name, s.ident));
                    let printed = pbpersist_model::print::message(&model);
                    assert_eq!(fmt(printed.clone()), fmt(quote::quote!(#s)), "{}: {}", file.name, s.ident);
                    let again: syn::DeriveInput = syn::parse2(printed).unwrap();
                    // Models are compared as printed: a NaN default is not equal to itself.
                    let reprinted = pbpersist_model::print::message(&pbpersist_model::parse::message(&again).unwrap());
                    assert_eq!(fmt(reprinted), fmt(quote::quote!(#s)));
                    messages += 1;
                }
                syn::Item::Enum(e) if derives(&e.attrs, "Enumeration") => {
                    let input: syn::DeriveInput = syn::parse_quote!(#e);
                    let model = pbpersist_model::parse::enumeration(&input)
                        .unwrap_or_else(|err| panic!("{}: {}: {err}", file.name, e.ident));
                    let printed = pbpersist_model::print::enumeration(&model);
                    assert_eq!(fmt(printed), fmt(quote::quote!(#e)), "{}: {}", file.name, e.ident);
                    enums += 1;
                }
                _ => {}
            }
        }
    }
    assert!(messages >= 30 && enums >= 10, "{messages} messages, {enums} enums");
}

/// With `runtime_crate`, generated items and the impls the derive writes for
/// them name the runtime only by that path.
#[test]
fn the_runtime_crate_path_can_be_set() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus");
    let files = pbpersist_build::Config::new()
        .cargo_directives(false)
        .runtime_crate("::framework::db")
        .generate(&[corpus.join("oneofs.proto"), corpus.join("wkt.proto")], &[corpus.as_path(), proto_dir()])
        .unwrap_or_else(|e| panic!("{e:?}"));
    let mut derived = 0;
    for file in files {
        assert!(!file.content.contains("pbpersist::"), "{}", file.content);
        assert!(file.content.contains("::framework::db::Persistent"));
        let parsed = syn::parse_file(&file.content).unwrap();
        let mut items = parsed.items;
        while let Some(item) = items.pop() {
            match item {
                syn::Item::Mod(m) => items.extend(m.content.map(|c| c.1).unwrap_or_default()),
                syn::Item::Struct(s) if s.attrs.iter().any(|a| a.path().is_ident("pbpersist")) => {
                    let model = pbpersist_model::parse::message(&syn::parse_quote!(#s)).unwrap();
                    let emitted = pbpersist_model::emit::message(&model).to_string();
                    assert!(emitted.contains("use :: framework :: db as __pbpersist"), "{emitted}");
                    assert!(!emitted.contains(":: pbpersist ::"), "{emitted}");
                    derived += 1;
                }
                _ => {}
            }
        }
    }
    assert!(derived > 0);
}

/// Files may be named as protoc and protox both take them: by path, or by
/// import name inside an include directory. Both front ends generate the
/// same for either, and a name neither can place is an error, never an
/// empty, successful compile.
#[cfg(feature = "vendored-protoc")]
#[test]
fn files_named_by_import_name_are_generated_by_both_front_ends() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("shop")).unwrap();
    std::fs::write(dir.path().join("shop/item.proto"), "syntax = \"proto3\";\npackage shop;\nmessage Item {}\n")
        .unwrap();
    let mut config = pbpersist_build::Config::new();
    config.cargo_directives(false);
    let by_path = config.generate(&[dir.path().join("shop/item.proto")], &[dir.path()]).unwrap();
    let by_name = config.generate(&["shop/item.proto"], &[dir.path()]).unwrap_or_else(|e| panic!("{e:?}"));
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path().unwrap());
    let by_protoc = config.generate(&["shop/item.proto"], &[dir.path()]).unwrap_or_else(|e| panic!("{e:?}"));
    let names = |files: &[pbpersist_build::GeneratedFile]| files.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&by_path), ["shop.rs"]);
    assert_eq!(by_name, by_path);
    assert_eq!(by_protoc, by_path);
    assert!(config.generate(&["shop/missing.proto"], &[dir.path()]).is_err());
}
