//! TLS to PostgreSQL (`PSQL_SSLMODE`, `PSQL_SSLROOTCERT`): every connection
//! the server opens, the pool's and the migrations', is made by one
//! [`Connector`], over rustls with the ring provider (the TLS stack the
//! SMTP client already brings; no OpenSSL, no libpq).

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use diesel::{ConnectionError, ConnectionResult};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// Whether and how connections to PostgreSQL are encrypted, the three
/// `PSQL_SSLMODE` values with libpq's meaning.
#[derive(Clone, Default)]
pub enum PgTls {
    /// `disable`: plain TCP (the default, for a database on the same host
    /// or a private network).
    #[default]
    Disable,
    /// `require`: encrypted, but any certificate is accepted (libpq's
    /// `require` without a root certificate): protects against passive
    /// eavesdroppers only.
    Require,
    /// `verify-full`: encrypted to a server whose certificate chains to
    /// these roots and names the host connected to.
    VerifyFull(PgRoots),
}

impl PgTls {
    /// The `PSQL_SSLMODE` value this setting stands for.
    pub fn mode(&self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Require => "require",
            Self::VerifyFull(_) => "verify-full",
        }
    }

    /// The `sslmode` tokio-postgres is given: TLS is required whenever it is
    /// configured (never a silent fall-back to plain TCP); the certificate
    /// checks are rustls's, set up by the [`Connector`].
    pub(super) fn sslmode(&self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Require | Self::VerifyFull(_) => "require",
        }
    }
}

impl fmt::Debug for PgTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disable | Self::Require => f.write_str(self.mode()),
            Self::VerifyFull(roots) => write!(f, "verify-full ({})", roots.origin()),
        }
    }
}

/// The certificate authorities `verify-full` trusts: the roots in
/// `PSQL_SSLROOTCERT`, or Mozilla's (webpki-roots) when it is unset.
#[derive(Clone)]
pub struct PgRoots {
    /// The PEM file they were read from; `None`: Mozilla's roots.
    file: Option<PathBuf>,
    store: Arc<RootCertStore>,
}

/// Why `PSQL_SSLROOTCERT` cannot be used (the file cannot be read, or holds
/// no usable certificate).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RootCertError(String);

impl PgRoots {
    /// Mozilla's root certificates, compiled in: for a managed database
    /// whose certificate comes from a public authority.
    pub fn webpki() -> Self {
        Self {
            file: None,
            store: Arc::new(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            }),
        }
    }

    /// Every certificate in the PEM file at `path` (other PEM sections, such
    /// as keys, are ignored). Fails when the file cannot be read, is not PEM,
    /// holds no certificate, or holds one that cannot be a trust anchor.
    pub fn from_pem_file(path: &Path) -> Result<Self, RootCertError> {
        let pem = std::fs::read(path)
            .map_err(|error| RootCertError(format!("cannot read the file: {error}")))?;
        let mut store = RootCertStore::empty();
        for certificate in CertificateDer::pem_slice_iter(&pem) {
            let certificate = certificate
                .map_err(|error| RootCertError(format!("not a valid PEM file: {error}")))?;
            store.add(certificate).map_err(|error| {
                RootCertError(format!("a certificate in it cannot be used: {error}"))
            })?;
        }
        if store.is_empty() {
            return Err(RootCertError(
                "no PEM certificate in the file (-----BEGIN CERTIFICATE-----)".to_owned(),
            ));
        }
        Ok(Self {
            file: Some(path.to_owned()),
            store: Arc::new(store),
        })
    }

    /// Where the roots come from, for messages.
    fn origin(&self) -> String {
        match &self.file {
            Some(file) => format!("PSQL_SSLROOTCERT={}", file.display()),
            None => "the webpki (Mozilla) roots, PSQL_SSLROOTCERT being unset".to_owned(),
        }
    }
}

/// A boxed connection future, the shape diesel-async's pool setup takes.
pub(super) type Connecting =
    Pin<Box<dyn Future<Output = ConnectionResult<AsyncPgConnection>> + Send>>;

/// Opens connections to one database, with TLS as configured. Cheap to
/// clone (the rustls configuration is shared).
#[derive(Clone)]
pub(super) struct Connector {
    /// The libpq-style connection string (`PgConfig::connection_string`).
    target: String,
    /// The rustls connector and the setting it was made from; `None`: plain TCP.
    tls: Option<(MakeRustlsConnect, PgTls)>,
}

impl Connector {
    /// A connector to `target` with `tls`.
    pub(super) fn new(target: String, tls: &PgTls) -> Result<Self, rustls::Error> {
        let roots = match tls {
            PgTls::Disable => return Ok(Self { target, tls: None }),
            PgTls::Require => None,
            PgTls::VerifyFull(roots) => Some(roots),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let config = match roots {
            None => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                    provider.signature_verification_algorithms,
                )))
                .with_no_client_auth(),
            Some(roots) => builder
                .with_root_certificates(roots.store.clone())
                .with_no_client_auth(),
        };
        Ok(Self {
            target,
            tls: Some((MakeRustlsConnect::new(config), tls.clone())),
        })
    }

    /// A new connection, set up for diesel-async.
    pub(super) async fn connect(&self) -> ConnectionResult<AsyncPgConnection> {
        let Some((connector, tls)) = &self.tls else {
            return AsyncPgConnection::establish(&self.target).await;
        };
        let (client, connection) = tokio_postgres::connect(&self.target, connector.clone())
            .await
            .map_err(|error| ConnectionError::BadConnection(describe(tls, &error)))?;
        AsyncPgConnection::try_from_client_and_connection(client, connection).await
    }

    /// [`Connector::connect`] as the pool's setup callback wants it.
    pub(super) fn connecting(&self) -> Connecting {
        let connector = self.clone();
        Box::pin(async move { connector.connect().await })
    }
}

/// Why a TLS connection failed, in words an operator can act on: a
/// certificate the roots do not vouch for is named as such, whatever layer
/// reported it.
fn describe(tls: &PgTls, error: &tokio_postgres::Error) -> String {
    let certificate =
        std::iter::successors(Some(error as &(dyn std::error::Error + 'static)), |error| {
            error.source()
        })
        .find_map(|error| {
            error.downcast_ref::<rustls::Error>().or_else(|| {
                error
                    .downcast_ref::<std::io::Error>()
                    .and_then(std::io::Error::get_ref)
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            })
        })
        .filter(|error| matches!(error, rustls::Error::InvalidCertificate(_)));
    match (tls, certificate) {
        (
            PgTls::VerifyFull(_),
            Some(
                reason @ rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ),
            ),
        ) => {
            format!("PostgreSQL TLS: the server's certificate is not valid for PSQL_HOST: {reason}")
        }
        (PgTls::VerifyFull(roots), Some(reason)) => format!(
            "PostgreSQL TLS: certificate not trusted by {}: {reason}",
            roots.origin()
        ),
        _ => format!(
            "PostgreSQL TLS (PSQL_SSLMODE={}): {}",
            tls.mode(),
            with_causes(error)
        ),
    }
}

/// `error` followed by each cause its message does not already include
/// (tokio-postgres says "error performing TLS handshake" and keeps the why,
/// such as "server does not support TLS", in its source).
fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    for cause in std::iter::successors(error.source(), |cause| cause.source()) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text = format!("{text}: {cause}");
        }
    }
    text
}

/// `require`'s verifier: any certificate is accepted (the connection is
/// encrypted, the server not authenticated), but the handshake's signatures
/// are still checked, so the session keys belong to whoever holds the
/// presented certificate.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
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
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, certificate, signature, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, certificate, signature, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!("p-chat-{}-{name}", uuid::Uuid::new_v4()));
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn a_missing_root_file_is_refused_with_the_reason() {
        let error = PgRoots::from_pem_file(Path::new("/nonexistent/ca.pem"))
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("cannot read the file"),
            "{error}"
        );
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let path = temp_file("empty.pem", b"not a certificate\n");
        let error = PgRoots::from_pem_file(&path).err().unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(error.to_string().contains("no PEM certificate"), "{error}");
    }

    #[test]
    fn a_certificate_that_is_not_der_is_refused() {
        let path = temp_file(
            "garbage.pem",
            b"-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
        );
        let error = PgRoots::from_pem_file(&path).err().unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(error.to_string().contains("cannot be used"), "{error}");
    }

    #[test]
    fn the_modes_keep_libpq_names_and_never_fall_back_to_plain_tcp() {
        assert_eq!(PgTls::default().mode(), "disable");
        assert_eq!(PgTls::Disable.sslmode(), "disable");
        assert_eq!(PgTls::Require.sslmode(), "require");
        let verify = PgTls::VerifyFull(PgRoots::webpki());
        assert_eq!(verify.mode(), "verify-full");
        assert_eq!(verify.sslmode(), "require");
        assert!(format!("{verify:?}").contains("Mozilla"));
    }

    #[test]
    fn every_mode_builds_a_connector() {
        for tls in [
            PgTls::Disable,
            PgTls::Require,
            PgTls::VerifyFull(PgRoots::webpki()),
        ] {
            let connector = Connector::new("host=localhost".to_owned(), &tls).unwrap();
            assert_eq!(connector.tls.is_some(), !matches!(tls, PgTls::Disable));
        }
    }
}
