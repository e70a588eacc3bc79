//! TLS to a PostgreSQL backend, with rustls (no OpenSSL), by libpq's `sslmode`: `disable`
//! (plain text), `allow` and `prefer` (TLS when the server offers it, no certificate check:
//! encryption against eavesdropping, not against a server in the middle), `require` (TLS or
//! nothing; the certificate is checked as for `verify-ca` when a root certificate is given,
//! as libpq does), `verify-ca` (the server's certificate chains to a CA of `sslrootcert`) and
//! `verify-full` (that, and it names the host e connects to, by DNS name or IP address). The
//! one connection of a backend (which holds the lock) is the TLS one.
//!
//! This file builds the connector and names a failed handshake in plain words; settings.rs
//! reads the mode and the root certificate's path.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How e speaks TLS to the backend: libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain text only.
    Disable,
    /// TLS when the server offers it, plain text otherwise; the certificate is not checked
    /// (`allow` is read as this too).
    Prefer,
    /// TLS or nothing; the certificate is not checked.
    Require,
    /// TLS, with a certificate signed by a CA of the root certificate file.
    VerifyCa,
    /// TLS, with a certificate signed by a CA of the root certificate file that names the
    /// host.
    VerifyFull,
}

impl SslMode {
    /// Reads libpq's name of a mode.
    pub fn parse(name: &str) -> anyhow::Result<SslMode> {
        Ok(match name {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => bail!(
                "the backend's `sslmode={other}` is not a mode e knows\nhint: use `disable`, `prefer`, `require`, `verify-ca` or `verify-full` (libpq's meanings; docs/backends.md)"
            ),
        })
    }

    /// Whether the server's certificate is checked against a CA.
    pub fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }

    /// The mode tokio-postgres negotiates with (it checks no certificate itself).
    pub fn negotiation(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Negotiation;
        match self {
            SslMode::Disable => Negotiation::Disable,
            SslMode::Prefer => Negotiation::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Negotiation::Require,
        }
    }
}

/// The TLS side of a backend's settings.
#[derive(Debug, Clone)]
pub struct Tls {
    /// The mode, after libpq's rule that `require` with a root certificate verifies the CA.
    pub mode: SslMode,
    /// The CA certificates (PEM) a verified server's certificate must chain to.
    pub root_cert: Option<PathBuf>,
}

/// The connector for `tls`, reading its root certificates.
pub fn connector(tls: &Tls) -> anyhow::Result<MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("rustls has no protocol version in common with its provider")?;
    let config = match (&tls.root_cert, tls.mode.verifies()) {
        (Some(file), true) => {
            let roots = Arc::new(roots(file)?);
            let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .context("failed to set up the check of the backend's certificate")?;
            let verifier: Arc<dyn ServerCertVerifier> = if tls.mode == SslMode::VerifyFull {
                verifier
            } else {
                Arc::new(AnyName(verifier))
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        }
        (None, true) => bail!(
            "the backend's `sslmode` checks the server's certificate, but no root certificate was given\nhint: add `sslrootcert=FILE` (the CA's certificate, PEM) to the URL or set `PGSSLROOTCERT`"
        ),
        (_, false) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
            .with_no_client_auth(),
    };
    Ok(MakeRustlsConnect::new(config))
}

/// The CA certificates of a PEM file.
fn roots(file: &Path) -> anyhow::Result<rustls::RootCertStore> {
    let unreadable = |err: rustls::pki_types::pem::Error| {
        anyhow::anyhow!(
            "failed to read the backend's root certificate `{}`: {err}\nhint: `sslrootcert` must name a PEM file with the CA's certificate",
            file.display()
        )
    };
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(file).map_err(unreadable)? {
        roots
            .add(certificate.map_err(unreadable)?)
            .with_context(|| format!("`{}` holds an invalid CA certificate", file.display()))?;
    }
    if roots.is_empty() {
        bail!(
            "the backend's root certificate `{}` holds no certificate\nhint: `sslrootcert` must name a PEM file with the CA's certificate",
            file.display()
        );
    }
    Ok(roots)
}

/// A failed TLS handshake (or a server without TLS) in plain words, if this error is one.
pub fn explain(err: &tokio_postgres::Error) -> Option<anyhow::Error> {
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        // An I/O error's `source` skips the error it wraps: look inside it too.
        let inner = cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        if let Some(rustls) = cause.downcast_ref::<rustls::Error>().or(inner) {
            return Some(handshake(rustls));
        }
        source = cause.source();
    }
    let text = err.to_string();
    let cause = std::error::Error::source(err).map(ToString::to_string);
    if text.contains("TLS") && cause.as_deref() == Some("server does not support TLS") {
        return Some(anyhow::anyhow!(
            "the server does not speak TLS\nhint: turn `ssl = on` in its configuration, or connect with `sslmode=prefer` or `disable` over a network you trust"
        ));
    }
    None
}

/// What a rustls error means for the user.
fn handshake(err: &rustls::Error) -> anyhow::Error {
    let (what, hint) = match err {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        | rustls::Error::InvalidCertificate(CertificateError::BadSignature) => (
            "the server's certificate is not signed by a CA of `sslrootcert`",
            "name the CA that signed the server's certificate with `sslrootcert=FILE` (or `PGSSLROOTCERT`)",
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => (
            "the server's certificate does not name the host e connects to",
            "connect to a name or address the certificate holds, or use `sslmode=verify-ca` to check the CA only",
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => (
            "the server's certificate has expired",
            "renew the server's certificate",
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        ) => (
            "the server's certificate is not valid yet",
            "check the clocks of this machine and of the server",
        ),
        _ => (
            "the TLS handshake with the server failed",
            "check the server's TLS settings (`ssl`, `ssl_cert_file`) and the `sslmode` of the URL",
        ),
    };
    anyhow::anyhow!("{what} ({err})\nhint: {hint}")
}

/// Checks the chain to a trusted CA, not the name (`verify-ca`).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The chain is checked before the name: a name error means the chain is good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Checks no certificate (`prefer`, `require`): the handshake's signatures still are, so the
/// channel is encrypted to whoever holds the certificate's key.
#[derive(Debug)]
struct Unchecked(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unchecked {
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
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_as_libpq_names_them() {
        assert_eq!(SslMode::parse("allow").unwrap(), SslMode::Prefer);
        assert_eq!(SslMode::parse("verify-full").unwrap(), SslMode::VerifyFull);
        assert!(SslMode::parse("verify_full").is_err());
        assert!(SslMode::VerifyCa.verifies() && !SslMode::Require.verifies());
    }

    #[test]
    fn a_verifying_mode_needs_a_root_certificate() {
        let tls = Tls {
            mode: SslMode::VerifyFull,
            root_cert: None,
        };
        let err = connector(&tls).err().unwrap().to_string();
        assert!(err.contains("sslrootcert"), "{err}");
    }
}
