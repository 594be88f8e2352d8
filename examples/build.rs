//! Generates the `demo` package from `proto/demo.proto` for the examples.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    pbpersist_build::compile_protos(&["../proto/demo.proto"], &["../proto"])?;
    Ok(())
}
