fn main() -> Result<(), Box<dyn std::error::Error>> {
    pbpersist_build::compile_protos(&["../proto/demo.proto", "proto/evolution.proto"], &["../proto", "proto"])?;
    Ok(())
}
