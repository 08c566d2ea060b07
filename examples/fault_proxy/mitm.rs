//! Terminating TLS like mitmproxy: a CA made at start, written to a file the client trusts,
//! and a certificate per host, signed by it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The proxy's certificate authority.
pub(crate) struct Authority {
    issuer: Issuer<'static, KeyPair>,
    certificate: CertificateDer<'static>,
    /// The TLS config made for each host so far.
    hosts: Mutex<HashMap<String, Arc<ServerConfig>>>,
}

impl Authority {
    /// Makes a new CA and writes its certificate, in PEM, to `path`.
    pub(crate) fn create(path: &Path) -> Result<Self, BoxError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "fault_proxy CA");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "retryable-http fault_proxy");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate()?;
        let certificate = params.self_signed(&key)?;
        std::fs::write(path, certificate.pem())
            .map_err(|e| format!("--mitm {}: {e}", path.display()))?;
        Ok(Authority {
            issuer: Issuer::new(params, key),
            certificate: certificate.der().clone(),
            hosts: Mutex::default(),
        })
    }

    /// A TLS server config with a certificate for `host` (a name or an IP address).
    pub(crate) fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, BoxError> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(config) = hosts.get(host) {
            return Ok(config.clone());
        }
        let mut params = CertificateParams::new(vec![host.to_owned()])?;
        params.distinguished_name.push(DnType::CommonName, host);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let leaf = params.signed_by(&key, &self.issuer)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(super::tls::provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone(), self.certificate.clone()], key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);
        hosts.insert(host.to_owned(), config.clone());
        Ok(config)
    }
}
