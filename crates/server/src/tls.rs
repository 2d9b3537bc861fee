//! TLS for the database connection, with libpq's meaning of every sslmode:
//! `disable`, `prefer` (the default) and `require` encrypt whenever the server offers
//! TLS (`require` refuses a server that does not) without verifying its certificate;
//! `verify-ca` also checks that the certificate chains to a root in `sslrootcert`
//! (libpq's default: `~/.postgresql/root.crt`), and `verify-full` also that it names
//! the host; as in libpq, `require` with an explicit `sslrootcert` verifies like
//! `verify-ca`. tokio-postgres parses neither verify mode nor `sslrootcert`: `conninfo`
//! takes them out of the connection string and the verifiers here enforce them.

use crate::error::Error;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Connection, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::conninfo::{split_verification, Verify};

/// Where and how to connect: the connection string tokio-postgres gets, and the TLS
/// connector that enforces the sslmode.
#[derive(Clone)]
pub struct Target {
    url: String,
    connector: MakeRustlsConnect,
}

type TlsStream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;

impl Target {
    /// Reads DATABASE_URL (a libpq key=value string or a postgresql:// URL).
    pub fn new(database_url: &str) -> Result<Self, Error> {
        Self::build(database_url).map_err(Error::Config)
    }

    fn build(database_url: &str) -> Result<Self, String> {
        let (url, verify, root) = split_verification(database_url)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions");
        let chain = match verify {
            None => None,
            Some(mode) => {
                let roots = Arc::new(load_roots(root.as_deref(), mode)?);
                let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                    .build()
                    .map_err(|e| format!("sslrootcert: {e}"))?;
                Some((webpki, mode))
            }
        };
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Verifier { provider, chain }))
            .with_no_client_auth();
        Ok(Self {
            url,
            connector: MakeRustlsConnect::new(config),
        })
    }

    /// Asks PostgreSQL to cancel what the connection of `token` is running, over a
    /// connection made as `connect` makes them (same host, same TLS rules).
    pub async fn cancel(&self, token: &tokio_postgres::CancelToken) {
        if let Err(e) = token.cancel_query(self.connector.clone()).await {
            tracing::warn!("cannot cancel a statement: {e}");
        }
    }

    /// Connects; the error names every cause (a refused certificate says why).
    pub async fn connect(&self) -> Result<(Client, Connection<Socket, TlsStream>), Error> {
        tokio_postgres::connect(&self.url, self.connector.clone())
            .await
            .map_err(|e| {
                let mut text = format!("cannot connect to PostgreSQL: {e}");
                let mut cause = std::error::Error::source(&e);
                while let Some(c) = cause {
                    text.push_str(&format!(": {c}"));
                    cause = c.source();
                }
                Error::Connect(text)
            })
    }
}

fn load_roots(path: Option<&str>, mode: Verify) -> Result<RootCertStore, String> {
    let mode = if mode == Verify::Full {
        "verify-full"
    } else {
        "verify-ca"
    };
    let path = match path {
        Some(p) => std::path::PathBuf::from(p),
        None => std::env::var_os("HOME")
            .map(|h| std::path::Path::new(&h).join(".postgresql/root.crt"))
            .ok_or("sslrootcert: not set, and HOME is not set to find ~/.postgresql/root.crt")?,
    };
    let shown = path.display();
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(&path).map_err(|e| {
        format!("sslrootcert: cannot read {shown} (sslmode={mode} needs the CA certificate): {e}")
    })?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("sslrootcert: {shown}: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("sslrootcert: {shown}: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("sslrootcert: {shown} holds no certificate"));
    }
    Ok(roots)
}

/// The certificate check of every sslmode. Without `chain` (disable, prefer, require)
/// any certificate is accepted, as libpq does; signatures are still checked, so the
/// peer must hold the certificate's key.
#[derive(Debug)]
struct Verifier {
    provider: Arc<CryptoProvider>,
    chain: Option<(Arc<WebPkiServerVerifier>, Verify)>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some((webpki, mode)) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        let checked =
            webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        match (checked, mode) {
            // verify-ca: a trusted chain is enough, whatever name the certificate gives.
            (
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )),
                Verify::Ca,
            ) => Ok(ServerCertVerified::assertion()),
            (checked, _) => checked,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_root_certificate_is_named() {
        let Err(e) = Target::new("host=h sslmode=verify-full sslrootcert=/nonexistent/root.crt")
        else {
            panic!("a missing sslrootcert must fail")
        };
        let e = e.to_string();
        assert!(
            e.contains("/nonexistent/root.crt") && e.contains("verify-full"),
            "{e}"
        );
    }
}
