//! TLS for the examples and tests: rustls with the ring provider. The library itself does
//! no TLS.

// Each example uses a part of this.
#![allow(dead_code)]

use std::error::Error as StdError;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

type BoxError = Box<dyn StdError + Send + Sync>;

/// Which servers a client trusts.
#[derive(Clone, Debug)]
pub(crate) enum Trust {
    /// The Mozilla roots that webpki-roots carries.
    Roots,
    /// Only the CA certificates in this PEM file, as curl's `--cacert` (mitmproxy's is
    /// `~/.mitmproxy/mitmproxy-ca-cert.pem`).
    CaFile(std::path::PathBuf),
    /// Every server: no certificate is checked. go's `InsecureSkipVerify`.
    Insecure,
}

/// The ring provider, which every config here uses.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client config that trusts what `trust` says (the connector that uses it sets ALPN).
pub(crate) fn client_config(trust: &Trust) -> Result<ClientConfig, BoxError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = match trust {
        Trust::Roots => builder
            .with_root_certificates(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
            .with_no_client_auth(),
        Trust::CaFile(path) => builder
            .with_root_certificates(ca_file(path)?)
            .with_no_client_auth(),
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// The CA certificates of a PEM file.
fn ca_file(path: &Path) -> Result<RootCertStore, BoxError> {
    let mut store = RootCertStore::empty();
    let certificates =
        CertificateDer::pem_file_iter(path).map_err(|e| format!("{}: {e}", path.display()))?;
    for certificate in certificates {
        let certificate = certificate.map_err(|e| format!("{}: {e}", path.display()))?;
        store
            .add(certificate)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if store.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()).into());
    }
    Ok(store)
}

/// The certificate error in `error`'s cause chain, if the failure was one: the server's
/// certificate is not trusted.
pub(crate) fn certificate_error<'a>(
    error: &'a (dyn StdError + 'static),
) -> Option<&'a rustls::Error> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            if matches!(tls, rustls::Error::InvalidCertificate(_)) {
                return Some(tls);
            }
        }
        // `io::Error::source` skips the error it wraps; `get_ref` returns it.
        next = match error.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|e| e as &(dyn StdError + 'static)),
            None => error.source(),
        };
    }
    None
}

/// Accepts every certificate; still checks that the handshake is signed by the key of the
/// certificate presented.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
