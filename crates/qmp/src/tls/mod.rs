//! TLS to QEMU's TLS monitors, with rustls: QEMU started with
//! `-object tls-creds-x509,id=tls0,dir=DIR,endpoint=server` and
//! `-chardev socket,id=m0,host=HOST,port=PORT,server=on,wait=off,tls-creds=tls0
//! -mon chardev=m0,mode=control` serves QMP over TLS at `tls:HOST:PORT`.
//!
//! The client trusts the CA that signed QEMU's `server-cert.pem` (QEMU's `ca-cert.pem`), checks
//! the certificate against the host of the address (or the name given with
//! [`TlsConfigBuilder::server_name`]), and presents a client certificate when one is given
//! (QEMU with `verify-peer=yes` requires one signed by its `ca-cert.pem`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let tls = qmp::TlsConfig::builder()
//!     .ca_file("/etc/pki/qemu/ca-cert.pem")
//!     .client_cert_files("/etc/pki/qemu/client-cert.pem", "/etc/pki/qemu/client-key.pem")
//!     .build()?;
//! let client = qmp::Client::builder().tls(tls).connect("tls:127.0.0.1:4444").await?;
//! # Ok(()) }
//! ```
//!
//! What fails, and how it reads (each in [`Error::Connect`](crate::Error::Connect)):
//! a certificate no given CA signed ("the server's certificate was not trusted"), one issued for
//! another name, a QEMU that wants a client certificate and got none or one it does not trust,
//! a monitor that does not speak TLS at all. Files that are missing, unreadable or hold no
//! PEM item of the right kind fail [`TlsConfigBuilder::build`] with [`TlsError`], naming the
//! file. The handshake is bounded by the negotiation timeout.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::CertifiedKey;
use rustls::{AlertDescription, CertificateError, ClientConfig, RootCertStore, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// rustls, as this crate uses it: for [`TlsConfig::from_rustls`].
pub use rustls;

/// The most a PEM file may hold: certificates and keys are a few KiB; a CA bundle well under.
const MAX_PEM_FILE: u64 = 4 << 20;

/// How to reach a QMP server over TLS: the CA(s) to trust, an optional client certificate
/// and key, and an optional server name. Cheap to clone; give it to
/// [`ClientBuilder::tls`](crate::ClientBuilder::tls), then connect to `tls:HOST:PORT`.
///
/// ```
/// # fn demo(ca_pem: &[u8]) -> Result<(), qmp::TlsError> {
/// let tls = qmp::TlsConfig::builder().ca_pem(ca_pem).server_name("vm1.example").build()?;
/// let builder = qmp::Client::builder().tls(tls);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    config: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server_name", &self.server_name)
            .field("client_certificate", &self.config.client_auth_cert_resolver.has_certs())
            .finish()
    }
}

impl TlsConfig {
    /// A builder: the CA first, then optionally a client certificate and a server name.
    pub fn builder() -> TlsConfigBuilder {
        TlsConfigBuilder::default()
    }

    /// A configuration made with rustls directly (other roots, a custom verifier, a key in
    /// hardware...). The server name is the address's host unless
    /// [`with_server_name`](Self::with_server_name) says otherwise.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use qmp::tls::rustls;
    ///
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let config = rustls::ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()
    ///     .unwrap()
    ///     .with_root_certificates(rustls::RootCertStore::empty())
    ///     .with_no_client_auth();
    /// let tls = qmp::TlsConfig::from_rustls(Arc::new(config));
    /// ```
    pub fn from_rustls(config: Arc<ClientConfig>) -> TlsConfig {
        TlsConfig { config, server_name: None }
    }

    /// The name the server's certificate must be valid for, instead of the address's host: a
    /// DNS name or an IP address.
    ///
    /// ```
    /// # fn demo(tls: qmp::TlsConfig) -> Result<(), qmp::TlsError> {
    /// let tls = tls.with_server_name("localhost")?;
    /// # Ok(()) }
    /// ```
    pub fn with_server_name(mut self, name: &str) -> Result<TlsConfig, TlsError> {
        self.server_name = Some(parse_server_name(name)?);
        Ok(self)
    }

    /// True when a client certificate will be presented if the server asks for one.
    pub fn has_client_certificate(&self) -> bool {
        self.config.client_auth_cert_resolver.has_certs()
    }

    /// The name to check the server's certificate against when connecting to `host`.
    fn name_for(&self, host: &str) -> io::Result<ServerName<'static>> {
        match &self.server_name {
            Some(name) => Ok(name.clone()),
            None => parse_server_name(host).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e)),
        }
    }

    /// A connector for one connection, which records whether the server asked for a client
    /// certificate (to explain a server that hangs up right after the handshake).
    fn connector(&self) -> (TlsConnector, Arc<AtomicBool>) {
        let asked = Arc::new(AtomicBool::new(false));
        let mut config = (*self.config).clone();
        config.client_auth_cert_resolver = Arc::new(NoteRequest {
            inner: Arc::clone(&self.config.client_auth_cert_resolver),
            asked: Arc::clone(&asked),
        });
        (TlsConnector::from(Arc::new(config)), asked)
    }
}

fn parse_server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    let bare = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(name);
    ServerName::try_from(bare.to_owned()).map_err(|_| TlsError::ServerName(name.to_owned()))
}

/// Where a PEM item comes from.
#[derive(Debug, Clone)]
enum Source {
    File(PathBuf),
    Pem(Vec<u8>),
}

impl Source {
    fn read(&self, what: &'static str) -> Result<(Vec<u8>, String), TlsError> {
        match self {
            Source::Pem(bytes) => Ok((bytes.clone(), "(given in memory)".to_owned())),
            Source::File(path) => {
                let err = |source| TlsError::Read { what, path: path.clone(), source };
                let file = std::fs::File::open(path).map_err(err)?;
                let mut bytes = Vec::new();
                io::Read::read_to_end(&mut io::Read::take(file, MAX_PEM_FILE + 1), &mut bytes)
                    .map_err(err)?;
                if bytes.len() as u64 > MAX_PEM_FILE {
                    return Err(TlsError::Pem {
                        what,
                        origin: path.display().to_string(),
                        why: format!("larger than {} MiB, not a PEM file", MAX_PEM_FILE >> 20),
                    });
                }
                Ok((bytes, path.display().to_string()))
            }
        }
    }
}

/// Builds a [`TlsConfig`] from PEM files (or PEM text): QEMU's `ca-cert.pem`, and for a
/// QEMU with `verify-peer=yes` a client certificate and its key signed by that CA. Nothing
/// is read before [`build`](Self::build).
///
/// ```no_run
/// # fn demo() -> Result<(), qmp::TlsError> {
/// // QEMU's own layout for a client: ca-cert.pem, and client-cert.pem/client-key.pem if present.
/// let tls = qmp::TlsConfig::builder().qemu_dir("/etc/pki/qemu").build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct TlsConfigBuilder {
    ca: Vec<Source>,
    cert: Option<Source>,
    key: Option<Source>,
    server_name: Option<String>,
    dir: Option<PathBuf>,
}

impl TlsConfigBuilder {
    /// Trusts the CA certificate(s) in this PEM file (QEMU's `ca-cert.pem`); may be called
    /// more than once.
    pub fn ca_file(mut self, path: impl AsRef<Path>) -> Self {
        self.ca.push(Source::File(path.as_ref().to_owned()));
        self
    }

    /// Trusts the CA certificate(s) in this PEM text.
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca.push(Source::Pem(pem.into()));
        self
    }

    /// Presents this client certificate (PEM, the certificate first, then any intermediates)
    /// with its private key (PEM: PKCS#8, SEC1 or PKCS#1) when the server asks for one.
    pub fn client_cert_files(mut self, cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Self {
        self.cert = Some(Source::File(cert.as_ref().to_owned()));
        self.key = Some(Source::File(key.as_ref().to_owned()));
        self
    }

    /// As [`client_cert_files`](Self::client_cert_files), from PEM text.
    pub fn client_cert_pem(mut self, cert: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.cert = Some(Source::Pem(cert.into()));
        self.key = Some(Source::Pem(key.into()));
        self
    }

    /// QEMU's layout for a TLS client's credentials directory: `DIR/ca-cert.pem`, and
    /// `DIR/client-cert.pem` with `DIR/client-key.pem` when both exist.
    pub fn qemu_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.dir = Some(dir.as_ref().to_owned());
        self
    }

    /// The name the server's certificate must be valid for (default: the host of the
    /// `tls:HOST:PORT` address): a DNS name or an IP address.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Reads and checks everything: every file must be readable and hold PEM items of its
    /// kind, and a client key must match its certificate.
    ///
    /// ```
    /// let err = qmp::TlsConfig::builder().ca_file("/nonexistent/ca-cert.pem").build().unwrap_err();
    /// assert!(err.to_string().contains("/nonexistent/ca-cert.pem"), "{err}");
    /// ```
    pub fn build(mut self) -> Result<TlsConfig, TlsError> {
        if let Some(dir) = self.dir.take() {
            self.ca.insert(0, Source::File(dir.join("ca-cert.pem")));
            let (cert, key) = (dir.join("client-cert.pem"), dir.join("client-key.pem"));
            if self.cert.is_none() && cert.exists() && key.exists() {
                self.cert = Some(Source::File(cert));
                self.key = Some(Source::File(key));
            }
        }
        if self.ca.is_empty() {
            return Err(TlsError::NoCa);
        }
        let mut roots = RootCertStore::empty();
        for source in &self.ca {
            let what = "TLS CA certificate file";
            let (pem, origin) = source.read(what)?;
            let certs = certificates(&pem, what, &origin)?;
            for cert in certs {
                roots.add(cert).map_err(|e| TlsError::Pem {
                    what,
                    origin: origin.clone(),
                    why: e.to_string(),
                })?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_root_certificates(roots);
        let config = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let what = "TLS client certificate file";
                let (pem, cert_origin) = cert.read(what)?;
                let chain = certificates(&pem, what, &cert_origin)?;
                let what = "TLS client key file";
                let (pem, key_origin) = key.read(what)?;
                let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Pem {
                    what,
                    origin: key_origin.clone(),
                    why: pem_problem(&e, "private key"),
                })?;
                builder.with_client_auth_cert(chain, key).map_err(|e| match e {
                    rustls::Error::InconsistentKeys(_) => {
                        TlsError::KeyMismatch { cert: cert_origin, key: key_origin }
                    }
                    other => TlsError::Pem { what, origin: key_origin, why: other.to_string() },
                })?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => return Err(TlsError::HalfClientCert),
        };
        let server_name = self.server_name.as_deref().map(parse_server_name).transpose()?;
        Ok(TlsConfig { config: Arc::new(config), server_name })
    }
}

fn certificates(
    pem: &[u8],
    what: &'static str,
    origin: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>().map_err(|e| {
        TlsError::Pem { what, origin: origin.to_owned(), why: pem_problem(&e, "certificate") }
    })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what,
            origin: origin.to_owned(),
            why: "holds no PEM certificate".into(),
        });
    }
    Ok(certs)
}

fn pem_problem(e: &rustls::pki_types::pem::Error, item: &str) -> String {
    match e {
        rustls::pki_types::pem::Error::NoItemsFound => format!("holds no PEM {item}"),
        other => format!("not valid PEM: {other}"),
    }
}

/// Why a [`TlsConfig`] could not be built; each names the file (or setting) at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read the {what} {}: {source}", path.display())]
    Read {
        /// What the file was to hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file (or PEM text) does not hold what it should.
    #[error("the {what} {origin} {why}")]
    Pem {
        /// What it was to hold.
        what: &'static str,
        /// The file, or "(given in memory)".
        origin: String,
        /// What is wrong.
        why: String,
    },
    /// No CA was given: nothing to check the server's certificate against.
    #[error("no TLS CA certificate given (QEMU's ca-cert.pem, the CA that signed its server-cert.pem)")]
    NoCa,
    /// A client certificate without its key, or a key without its certificate.
    #[error("a TLS client certificate needs its key, and a key its certificate")]
    HalfClientCert,
    /// The client key is not the certificate's.
    #[error("the TLS client key {key} does not belong to the client certificate {cert}")]
    KeyMismatch {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
    },
    /// Not a DNS name or an IP address.
    #[error("invalid TLS server name {0:?}: not a DNS name or an IP address")]
    ServerName(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
}

impl From<TlsError> for crate::Error {
    fn from(e: TlsError) -> Self {
        crate::Error::Io(io::Error::new(io::ErrorKind::InvalidInput, e))
    }
}

/// Wraps the configured client certificate resolver to note that the server asked.
#[derive(Debug)]
struct NoteRequest {
    inner: Arc<dyn ResolvesClientCert>,
    asked: Arc<AtomicBool>,
}

impl ResolvesClientCert for NoteRequest {
    fn resolve(&self, hints: &[&[u8]], schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.asked.store(true, Ordering::Relaxed);
        self.inner.resolve(hints, schemes)
    }

    fn only_raw_public_keys(&self) -> bool {
        self.inner.only_raw_public_keys()
    }

    fn has_certs(&self) -> bool {
        self.inner.has_certs()
    }
}

/// Where a stream of JSON values written so far ends: inside a value or between two. Each
/// write that ends between values is followed by a TLS record holding one space, because
/// QEMU 7.2 reads its TLS monitor's input one byte per wake-up and is woken only while the
/// socket holds unread records: the bytes of the last record it received wait, decrypted but
/// unread, until another record arrives. A request followed by a record of whitespace (which
/// QMP ignores between values) is read whole at once. (QEMU 8 and later watch for pending TLS
/// data; to them, and to other servers, the space is harmless.)
#[derive(Debug, Default, Clone)]
pub(crate) struct Boundary {
    depth: usize,
    /// The quote of the string being written (`"`, or `'` as QEMU also reads).
    quote: Option<u8>,
    escaped: bool,
}

impl Boundary {
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == 0xFF {
                // QEMU's parser starts afresh at 0xFF (the guest agent's sync), in a string too.
                *self = Boundary::default();
                continue;
            }
            if let Some(q) = self.quote {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == q {
                    self.quote = None;
                }
                continue;
            }
            match b {
                b'"' | b'\'' => self.quote = Some(b),
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
        }
    }

    /// True when a space written now would fall between two values.
    pub(crate) fn between_values(&self) -> bool {
        self.depth == 0 && self.quote.is_none()
    }
}

/// A finished handshake: the stream, and the first plaintext bytes when they were awaited.
pub(crate) struct Established {
    pub(crate) stream: TlsStream<TcpStream>,
    pub(crate) first: Vec<u8>,
}

/// The host part of `host:port` (`[::1]:4444` gives `::1`).
pub(crate) fn host_of(hostport: &str) -> &str {
    let host = hostport.rsplit_once(':').map_or(hostport, |(h, _)| h);
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

/// Runs the TLS handshake over `tcp` and, with `read_first` (the caller awaits a greeting),
/// reads until the first plaintext arrives: a server that checks a client certificate after
/// the handshake (QEMU under TLS 1.3) hangs up only then, and that is best told here. Errors
/// say what went wrong in words (see the module docs).
pub(crate) async fn establish(
    tcp: TcpStream,
    tls: &TlsConfig,
    host: &str,
    read_first: bool,
) -> io::Result<Established> {
    let _ = tcp.set_nodelay(true);
    let name = tls.name_for(host)?;
    let (connector, asked) = tls.connector();
    let mut stream = connector.connect(name.clone(), tcp).await.map_err(|e| explain(e, &name))?;
    let mut first = Vec::new();
    if read_first {
        let mut buf = vec![0u8; 16 * 1024];
        match stream.read(&mut buf).await {
            Ok(n) if n > 0 => {
                buf.truncate(n);
                first = buf;
            }
            Ok(_) => return Err(closed_after_handshake(&asked, tls)),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof || is_reset(&e) => {
                return Err(closed_after_handshake(&asked, tls))
            }
            Err(e) => return Err(explain(e, &name)),
        }
    }
    Ok(Established { stream, first })
}

fn is_reset(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe)
}

fn closed_after_handshake(asked: &AtomicBool, tls: &TlsConfig) -> io::Error {
    let why = match (asked.load(Ordering::Relaxed), tls.has_client_certificate()) {
        (true, false) => {
            "the server asked for a TLS client certificate, none was given, and it closed the connection \
             (a QEMU with verify-peer=yes needs one signed by its ca-cert.pem)"
        }
        (true, true) => {
            "the server closed the connection after the TLS handshake: it did not accept the client \
             certificate (not signed by the server's CA, or refused by its authorization list)"
        }
        _ => "the server closed the connection right after the TLS handshake",
    };
    io::Error::new(io::ErrorKind::ConnectionAborted, why)
}

/// An I/O error from the handshake or a TLS read, in words: a rustls error inside becomes
/// what it means for a QMP client.
pub(crate) fn explain(e: io::Error, name: &ServerName<'_>) -> io::Error {
    let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) else {
        if e.kind() == io::ErrorKind::UnexpectedEof || is_reset(&e) {
            return io::Error::new(
                e.kind(),
                format!(
                    "the server closed the connection during the TLS handshake ({e}): is it a TLS monitor?"
                ),
            );
        }
        return e;
    };
    io::Error::new(io::ErrorKind::InvalidData, describe(tls, name))
}

fn describe(e: &rustls::Error, name: &ServerName<'_>) -> String {
    use rustls::Error as E;
    let name = name.to_str();
    match e {
        E::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => {
                format!("the server's certificate was not trusted: it is not signed by a CA given ({e})")
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => format!(
                "the server's certificate is not valid for {name:?}; give the name it was issued for \
                 as the TLS server name ({e})"
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("the server's certificate has expired ({e})")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("the server's certificate is not valid yet ({e})")
            }
            _ => format!("the server's certificate was not trusted ({e})"),
        },
        E::AlertReceived(AlertDescription::CertificateRequired) => {
            format!("the server requires a TLS client certificate and none was given ({e})")
        }
        E::AlertReceived(
            a @ (AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateExpired
            | AlertDescription::AccessDenied),
        ) => format!("the server refused the TLS client certificate (alert {a:?})"),
        E::AlertReceived(a) => format!("the server ended the TLS session (alert {a:?})"),
        E::InvalidMessage(_) | E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            format!("the server does not speak TLS here; is it a monitor without tls-creds? ({e})")
        }
        other => format!("TLS: {other}"),
    }
}

/// A TLS session to QEMU's TLS monitor at `host:port` (handshake bounded by `bound`), as a
/// plain byte stream, for programs that speak QMP on it themselves (`qmp proxy`). Errors are
/// worded as the client's. QEMU 7.2 leaves the last TLS record it received unread until
/// another arrives, so follow each write that ends between two requests with a write of one
/// space (its own record) and a flush, as the client does.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// let tls = qmp::TlsConfig::builder().ca_file("ca-cert.pem").build().map_err(std::io::Error::other)?;
/// let mut s = qmp::tls::connect_stream("127.0.0.1:4444", &tls, std::time::Duration::from_secs(5)).await?;
/// let mut greeting = [0u8; 512];
/// let n = s.read(&mut greeting).await?;
/// s.write_all(br#"{"execute": "qmp_capabilities"}"#).await?;
/// s.write_all(b" ").await?;
/// s.flush().await?;
/// # Ok(()) }
/// ```
pub async fn connect_stream(
    hostport: &str,
    tls: &TlsConfig,
    bound: Duration,
) -> io::Result<impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> {
    let connect = async {
        let tcp = TcpStream::connect(hostport).await?;
        establish(tcp, tls, host_of(hostport), false).await
    };
    match tokio::time::timeout(bound, connect).await {
        Ok(r) => r.map(|est| est.stream),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no TLS session with {hostport} within {bound:?}"),
        )),
    }
}

/// Connects the async client's transport: the handshake (and first read) over `tcp`, bounded
/// by `bound`; failures are [`Error::Connect`](crate::Error::Connect) naming `address`.
pub(crate) async fn connect_async(
    tcp: TcpStream,
    tls: &TlsConfig,
    address: &crate::Address,
    read_first: bool,
    bound: Duration,
) -> crate::Result<crate::transport::Transport> {
    let host = address_host(address);
    match tokio::time::timeout(bound, establish(tcp, tls, host, read_first)).await {
        Ok(Ok(est)) => Ok(crate::transport::Transport::tls(est)),
        Ok(Err(source)) => Err(crate::Error::Connect { address: address.to_string(), source }),
        Err(_) => Err(crate::builder::negotiation_expired(crate::NegotiationStep::TlsHandshake, bound)),
    }
}

fn address_host(address: &crate::Address) -> &str {
    match address {
        crate::Address::Tls(hp) | crate::Address::Tcp(hp) => host_of(hp),
        crate::Address::Unix(_) | crate::Address::Vsock { .. } | crate::Address::Serial(_) => "",
    }
}

/// Copies between the TLS stream and the plain socket until either side closes or fails; the
/// other side then sees its end close. Requests are followed by a one-space record when they
/// end between values (see [`Boundary`]).
async fn relay(stream: TlsStream<TcpStream>, plain: tokio::net::UnixStream) {
    let (mut tls_rd, mut tls_wr) = tokio::io::split(stream);
    let (mut plain_rd, mut plain_wr) = plain.into_split();
    let up = async {
        let mut buf = vec![0u8; 64 * 1024];
        let mut boundary = Boundary::default();
        loop {
            let n = match plain_rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            boundary.feed(&buf[..n]);
            if tls_wr.write_all(&buf[..n]).await.is_err() {
                break;
            }
            if boundary.between_values() && tls_wr.write_all(b" ").await.is_err() {
                break;
            }
            if tls_wr.flush().await.is_err() {
                break;
            }
        }
        let _ = tls_wr.shutdown().await;
    };
    let down = tokio::io::copy(&mut tls_rd, &mut plain_wr);
    tokio::select! {
        () = up => {}
        _ = down => {}
    }
}

/// For the blocking client: the handshake on a thread of its own, which then relays between
/// the TLS stream and a socket pair whose other end is returned; the blocking connection reads
/// and writes plain QMP on it. The handshake's failure is returned here, as
/// [`connect_async`]'s. The thread ends when either side closes.
pub(crate) fn relay_blocking(
    tcp: std::net::TcpStream,
    tls: &TlsConfig,
    address: &crate::Address,
    read_first: bool,
    bound: Duration,
) -> crate::Result<std::os::unix::net::UnixStream> {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    theirs.set_nonblocking(true)?;
    tcp.set_nonblocking(true)?;
    let (done_tx, done_rx) = std::sync::mpsc::channel::<crate::Result<()>>();
    let (tls, address) = (tls.clone(), address.clone());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("qmp-tls".into()).spawn(move || {
        runtime.block_on(async move {
            let setup = || -> io::Result<_> {
                Ok((TcpStream::from_std(tcp)?, tokio::net::UnixStream::from_std(theirs)?))
            };
            let (tcp, mut plain) = match setup() {
                Ok(pair) => pair,
                Err(e) => {
                    let _ = done_tx.send(Err(e.into()));
                    return;
                }
            };
            let host = address_host(&address);
            let Established { stream, first } =
                match tokio::time::timeout(bound, establish(tcp, &tls, host, read_first)).await {
                    Ok(Ok(est)) => est,
                    Ok(Err(source)) => {
                        let _ =
                            done_tx.send(Err(crate::Error::Connect { address: address.to_string(), source }));
                        return;
                    }
                    Err(_) => {
                        let _ = done_tx.send(Err(crate::builder::negotiation_expired(
                            crate::NegotiationStep::TlsHandshake,
                            bound,
                        )));
                        return;
                    }
                };
            if let Err(e) = plain.write_all(&first).await {
                let _ = done_tx.send(Err(e.into()));
                return;
            }
            let _ = done_tx.send(Ok(()));
            relay(stream, plain).await;
        });
    })?;
    match done_rx.recv() {
        Ok(Ok(())) => Ok(ours),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(crate::Error::Io(io::Error::other("the TLS relay thread ended before the handshake"))),
    }
}

#[cfg(test)]
mod tests;
