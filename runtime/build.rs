//! Generates the server protocol's messages and gRPC client and server code
//! from `proto/pbpersist/server.proto` when the `remote` feature is on; with
//! protox, so no `protoc` is needed.

fn main() {
    #[cfg(feature = "remote")]
    generate();
}

#[cfg(feature = "remote")]
fn generate() {
    let proto = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto");
    let file = proto.join("pbpersist/server.proto");
    println!("cargo::rerun-if-changed={}", file.display());
    let descriptors = protox::compile([&file], [&proto]).unwrap_or_else(|e| panic!("{e:?}"));
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)
        .unwrap_or_else(|e| panic!("generating the server protocol's code: {e}"));
}
