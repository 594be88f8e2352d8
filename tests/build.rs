fn main() -> Result<(), Box<dyn std::error::Error>> {
    pbpersist_build::Config::new().resolve_conflicts("bank.ResolvingCounter", "crate::merge_counter").compile_protos(
        &["../proto/demo.proto", "proto/evolution.proto", "proto/bank.proto"],
        &["../proto", "proto"],
    )?;
    Ok(())
}
