//! Generate the gRPC code from `proto/weft/v1/weft.proto`, with the
//! vendored `protoc`, plus the file descriptor set server reflection needs.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("weft_descriptor.bin"))
        .compile_with_config(
            config,
            &["../../proto/weft/v1/weft.proto"],
            &["../../proto"],
        )?;
    println!("cargo:rerun-if-changed=../../proto/weft/v1/weft.proto");
    Ok(())
}
