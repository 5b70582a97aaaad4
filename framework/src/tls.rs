//! HTTPS with rustls: TLS 1.3 and 1.2 only (rustls has no older versions), on the
//! `ring` provider so no C toolchain is needed.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;

/// Loads the certificate chain and key named by `[server.tls]`.
pub fn server_config(config: &TlsConfig) -> Result<rustls::ServerConfig, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&config.cert_path)
        .and_then(|certs| certs.collect())
        .map_err(|e| format!("server.tls.cert_path {}: {e}", config.cert_path))?;
    if certs.is_empty() {
        return Err(format!(
            "server.tls.cert_path {}: no certificate",
            config.cert_path
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&config.key_path)
        .map_err(|e| format!("server.tls.key_path {}: {e}", config.key_path))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("server.tls: {e}"))
}
