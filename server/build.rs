//! Generates the server's side of the gRPC service in
//! `proto/pbpersist/server.proto`, over the protocol's messages that the
//! runtime generates (`pbpersist::storage::protocol`), so that the messages exist
//! once and clients never compile the server's code.

fn main() {
    let proto = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto");
    let file = proto.join("pbpersist/server.proto");
    println!("cargo::rerun-if-changed={}", file.display());
    let descriptors = protox::compile([&file], [&proto]).unwrap_or_else(|e| panic!("{e:?}"));
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .extern_path(".pbpersist.server.v1", "::pbpersist::storage::protocol")
        .compile_fds(descriptors)
        .unwrap_or_else(|e| panic!("generating the server's side of the protocol: {e}"));
}
