//! `weft certs dev`: a local CA and a server and a client certificate
//! signed by it, to try TLS and mutual TLS without any other tool. For
//! development only: production certificates come from the operator's CA.

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::Path;

/// Write `ca.pem`, `server.pem` / `server-key.pem` (for `names`, plus
/// localhost, 127.0.0.1 and ::1) and `client.pem` / `client-key.pem` (common
/// name and DNS name `client`) into `out`. Keys are owner-only; the CA's key is not kept,
/// so nothing else can ever be signed by this CA.
pub fn dev(out: &Path, names: &[String], client: &str) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "weft development CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca = Issuer::new(ca_params, ca_key);

    let mut sans = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    sans.extend(names.iter().cloned());
    let mut server = CertificateParams::new(sans)?;
    server
        .distinguished_name
        .push(DnType::CommonName, "weft server");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate()?;
    let server_cert = server.signed_by(&server_key, &ca)?;

    // The name is a DNS name of the certificate too, so a server can map
    // it to an identity (`[security.certificate_grants]`).
    let mut client_params = CertificateParams::new(vec![client.to_owned()])?;
    client_params
        .distinguished_name
        .push(DnType::CommonName, client);
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate()?;
    let client_cert = client_params.signed_by(&client_key, &ca)?;

    write(out, "ca.pem", &ca_cert.pem(), false)?;
    write(out, "server.pem", &server_cert.pem(), false)?;
    write(out, "server-key.pem", &server_key.serialize_pem(), true)?;
    write(out, "client.pem", &client_cert.pem(), false)?;
    write(out, "client-key.pem", &client_key.serialize_pem(), true)?;
    Ok(())
}

fn write(dir: &Path, name: &str, text: &str, secret: bool) -> Result<()> {
    use std::io::Write;
    let path = dir.join(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    let mut file = options
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
