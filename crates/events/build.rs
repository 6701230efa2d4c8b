//! Compiles the protobuf schemas in `proto/wasl/v1/` into Rust with prost, using protox as the
//! compiler so that no system `protoc` is needed.

use std::error::Error;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let package_dir = root.join("wasl/v1");
    // The schemas only: proto/testdata changing (fixtures being blessed) must not rebuild us.
    println!("cargo:rerun-if-changed={}", root.join("wasl").display());

    // Every .proto of the package, in a stable order, so that a new file is picked up by itself.
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&package_dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "proto") {
            files.push(path);
        }
    }
    files.sort();

    let fds = protox::compile(&files, [&root])?;
    prost_build::Config::new()
        // These hold a survivor code or sealed bytes: their Debug output is written by hand
        // (src/pb.rs) so that logging a message cannot leak them.
        .skip_debug(["wasl.v1.ClientProfile", "wasl.v1.EncryptedPii"])
        .compile_fds(fds)?;
    Ok(())
}
