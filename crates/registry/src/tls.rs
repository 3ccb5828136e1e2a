//! TLS: loading the server certificate, and a development CA plus server certificate for local use.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A TLS setup problem, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("TLS {path}: {message}")]
pub struct TlsError {
    /// The certificate, key or output directory.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

/// A rustls server config (TLS 1.2 and 1.3 only, ALPN h2 and http/1.1) from PEM files.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let err = |path: &Path, message: String| TlsError {
        path: path.to_path_buf(),
        message,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| err(cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(err(cert, "no CERTIFICATE block found".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| err(key, format!("no usable private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| err(cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| err(cert, format!("certificate and key do not form a usable pair: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Files written by [`write_dev_certificates`].
#[derive(Clone, Debug)]
pub struct DevCertificates {
    /// The CA certificate to trust on clients (`ca.crt`: the name skopeo/podman `--cert-dir` and
    /// `/etc/containers/certs.d` expect for a CA).
    pub ca_cert: PathBuf,
    /// The server certificate chain for `[tls] cert`.
    pub server_cert: PathBuf,
    /// The server key for `[tls] key` (mode 0600).
    pub server_key: PathBuf,
}

/// Creates a development CA and a server certificate for `hosts` (DNS names or IP addresses) in `dir`.
/// The CA key is not kept: nothing else can be signed with it later.
pub fn write_dev_certificates(dir: &Path, hosts: &[String]) -> Result<DevCertificates, TlsError> {
    let err = |message: String| TlsError {
        path: dir.to_path_buf(),
        message,
    };
    let rc = |e: rcgen::Error| err(e.to_string());
    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(rc)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "customs registry development CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(rc)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(rc)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params = CertificateParams::new(hosts.to_vec()).map_err(rc)?;
    params
        .distinguished_name
        .push(DnType::CommonName, hosts.first().map(String::as_str).unwrap_or("localhost"));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    // Strict verifiers (`openssl verify -x509_strict`, Python's VERIFY_X509_STRICT) require it.
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().map_err(rc)?;
    let cert = params.signed_by(&key, &issuer).map_err(rc)?;

    let files = DevCertificates {
        ca_cert: dir.join("ca.crt"),
        server_cert: dir.join("server-cert.pem"),
        server_key: dir.join("server-key.pem"),
    };
    let write = |path: &Path, text: String, private: bool| -> Result<(), TlsError> {
        let fail = |e: std::io::Error| TlsError {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let _ = private;
        use std::io::Write;
        options.open(path).and_then(|mut f| f.write_all(text.as_bytes())).map_err(fail)
    };
    write(&files.ca_cert, ca_cert.pem(), false)?;
    write(&files.server_cert, format!("{}{}", cert.pem(), ca_cert.pem()), false)?;
    write(&files.server_key, key.serialize_pem(), true)?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_certificates_load_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_dev_certificates(dir.path(), &["localhost".into(), "127.0.0.1".into()]).unwrap();
        server_config(&files.server_cert, &files.server_key).unwrap();
        let err = server_config(&files.server_key, &files.server_key).unwrap_err().to_string();
        assert!(err.contains("server-key.pem") && err.contains("CERTIFICATE"), "{err}");
        let err = server_config(&files.server_cert, &files.ca_cert).unwrap_err().to_string();
        assert!(err.contains("ca.crt"), "{err}");
    }

    #[test]
    fn dev_certificates_pass_strict_x509_verification() {
        let dir = tempfile::tempdir().unwrap();
        let files = write_dev_certificates(dir.path(), &["localhost".into()]).unwrap();
        // The leaf alone (the file also carries the CA, which `openssl verify` would check as a second leaf).
        let pem = std::fs::read_to_string(&files.server_cert).unwrap();
        let leaf = &pem[..pem.find("-----END CERTIFICATE-----").unwrap() + 25];
        std::fs::write(dir.path().join("leaf.pem"), leaf).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["verify", "-x509_strict", "-purpose", "sslserver", "-CAfile"])
            .arg(&files.ca_cert)
            .arg(dir.path().join("leaf.pem"))
            .output()
            .expect("openssl (apt-get install openssl) checks the certificates as strict clients do");
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
    }
}
