//! TLS to the server: rustls with the `postgres-tls` feature, none without.
//!
//! Like libpq: `sslmode=prefer` (the default) and `require` encrypt; the
//! server's certificate is verified (chain and host name) when the URL names
//! trusted authorities with `sslrootcert=<PEM file>` or `sslrootcert=system`,
//! and is not verified otherwise (libpq's `require`: encryption against
//! eavesdropping, not against a server impersonated on the network path).

use postgres::config::SslMode;

use crate::config::PostgresUrl;
use crate::error::{Error, Result};

#[cfg(feature = "postgres-tls")]
pub(super) type Tls = tokio_postgres_rustls::MakeRustlsConnect;
#[cfg(not(feature = "postgres-tls"))]
pub(super) type Tls = postgres::NoTls;

#[cfg(not(feature = "postgres-tls"))]
pub(super) fn connector(url: &PostgresUrl, mode: SslMode) -> Result<Tls> {
    let needs_tls = |field: &str| {
        Error::invalid(
            field,
            "TLS needs the `postgres-tls` feature of silmari-store",
        )
    };
    if url.ssl_root_cert().is_some() {
        return Err(needs_tls("sslrootcert"));
    }
    if mode == SslMode::Require {
        return Err(needs_tls("sslmode"));
    }
    Ok(postgres::NoTls)
}

#[cfg(feature = "postgres-tls")]
pub(super) fn connector(url: &PostgresUrl, _mode: SslMode) -> Result<Tls> {
    use std::sync::Arc;

    use rustls::ClientConfig;
    use rustls::RootCertStore;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::invalid("sslmode", e.to_string()))?;
    let bad = |reason: String| Error::invalid("sslrootcert", reason);
    let config = match url.ssl_root_cert() {
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth(),
        Some(source) => {
            let mut roots = RootCertStore::empty();
            let certificates: Vec<CertificateDer<'static>> = if source == "system" {
                rustls_native_certs::load_native_certs().certs
            } else {
                CertificateDer::pem_file_iter(source)
                    .and_then(|certs| certs.collect::<Result<_, _>>())
                    .map_err(|e| bad(format!("cannot read {source}: {e}")))?
            };
            let (added, _ignored) = roots.add_parsable_certificates(certificates);
            if added == 0 {
                return Err(bad(format!("no usable certificate in {source}")));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Accepts the server's certificate without checking who issued it (libpq's
/// `sslmode=require` without a root certificate), while still checking that
/// the server holds the certificate's key.
#[cfg(feature = "postgres-tls")]
#[derive(Debug)]
struct EncryptOnly(std::sync::Arc<rustls::crypto::CryptoProvider>);

#[cfg(feature = "postgres-tls")]
impl rustls::client::danger::ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// True when `e` is a failed TLS handshake, such as a refused certificate:
/// a setup problem, not an outage, so it is not reported as unavailable.
pub(super) fn is_tls_failure(e: &postgres::Error) -> bool {
    #[cfg(feature = "postgres-tls")]
    {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(s) = source {
            let inner_is_tls = s
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.is::<rustls::Error>());
            if s.is::<rustls::Error>() || inner_is_tls {
                return true;
            }
            source = s.source();
        }
    }
    let _ = e;
    false
}
