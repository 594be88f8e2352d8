use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    pbpersist_build::Config::new()
        .resolve_conflicts("bank.ResolvingCounter", "crate::merge_counter")
        .compile_protos(
            &["../proto/demo.proto", "proto/evolution.proto", "proto/bank.proto"],
            &["../proto", "proto"],
        )?;

    // The coverage corpus: every construct, in its own module tree so that
    // package paths nest as the packages do.
    let corpus: Vec<PathBuf> = CORPUS.iter().map(|f| PathBuf::from("corpus").join(f)).collect();
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("corpus");
    pbpersist_build::Config::new().out_dir(&out).compile_protos(&corpus, &["corpus"])?;
    // descriptor.proto itself, with its enum defaults, as a stress test.
    pbpersist_build::Config::new()
        .out_dir(out.join("descriptor"))
        .compile_protos(&["google/protobuf/descriptor.proto"], &[] as &[&str])?;
    Ok(())
}

const CORPUS: &[&str] = &[
    "scalars.proto",
    "proto3.proto",
    "nested.proto",
    "enums.proto",
    "oneofs.proto",
    "maps.proto",
    "groups.proto",
    "wkt.proto",
    "c/d.proto",
    "a/b/uses.proto",
    "hazards.proto",
    "deep_package.proto",
];
