//! Where a QMP server lives: a unix socket path, a TCP `host:port`, or a TLS `host:port`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A QMP server address.
///
/// Parsed from `unix:PATH`, `tcp:HOST:PORT`, `tls:HOST:PORT`, `HOST:PORT` (when PORT is a
/// number and the text holds no `/`), or else a plain unix socket path:
///
/// ```
/// use qmp::Address;
///
/// assert_eq!("unix:/run/qmp.sock".parse::<Address>().unwrap(), Address::Unix("/run/qmp.sock".into()));
/// assert_eq!("/run/qmp.sock".parse::<Address>().unwrap(), Address::Unix("/run/qmp.sock".into()));
/// assert_eq!("localhost:4444".parse::<Address>().unwrap(), Address::Tcp("localhost:4444".into()));
/// assert_eq!("tcp:[::1]:4444".parse::<Address>().unwrap(), Address::Tcp("[::1]:4444".into()));
/// assert_eq!("qmp.sock".parse::<Address>().unwrap(), Address::Unix("qmp.sock".into()));
/// assert_eq!("tls:127.0.0.1:4444".parse::<Address>().unwrap(), Address::Tls("127.0.0.1:4444".into()));
/// assert!("tls:/run/qmp.sock".parse::<Address>().is_err());
/// ```
///
/// A `tls:` address needs a [`TlsConfig`](crate::TlsConfig) on the builder
/// ([`ClientBuilder::tls`](crate::ClientBuilder::tls)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// A unix-domain stream socket.
    Unix(PathBuf),
    /// A TCP `host:port`.
    Tcp(String),
    /// TLS over TCP to `host:port`: QEMU's TLS chardev (`tls-creds=ID`). The certificate is
    /// checked against the host unless the [`TlsConfig`](crate::TlsConfig) names another.
    Tls(String),
}

/// Why an address did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid QMP address {input:?}: {why}")]
pub struct AddressError {
    input: String,
    why: &'static str,
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| AddressError { input: s.to_owned(), why };
        if s.is_empty() {
            return Err(err("empty address"));
        }
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(err("unix: needs a path"));
            }
            return Ok(Address::Unix(path.into()));
        }
        if let Some(hostport) = s.strip_prefix("tcp:") {
            return match split_port(hostport) {
                Some((host, _)) if !host.is_empty() => Ok(Address::Tcp(hostport.to_owned())),
                _ => Err(err("tcp: needs HOST:PORT with a numeric port")),
            };
        }
        if let Some(hostport) = s.strip_prefix("tls:") {
            return match split_port(hostport) {
                Some((host, _)) if !host.is_empty() => Ok(Address::Tls(hostport.to_owned())),
                _ => Err(err("tls: needs HOST:PORT with a numeric port (QEMU serves TLS over TCP only)")),
            };
        }
        if !s.contains('/') {
            if let Some((host, _)) = split_port(s) {
                if !host.is_empty() {
                    return Ok(Address::Tcp(s.to_owned()));
                }
            }
        }
        Ok(Address::Unix(s.into()))
    }
}

/// Splits `host:port` at the last colon when the port is a valid number.
fn split_port(s: &str) -> Option<(&str, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port = port.parse().ok()?;
    Some((host, port))
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
            Address::Tcp(hp) => write!(f, "tcp:{hp}"),
            Address::Tls(hp) => write!(f, "tls:{hp}"),
        }
    }
}

impl From<PathBuf> for Address {
    fn from(p: PathBuf) -> Self {
        Address::Unix(p)
    }
}

impl From<&std::path::Path> for Address {
    fn from(p: &std::path::Path) -> Self {
        Address::Unix(p.to_owned())
    }
}

/// Anything that names an address: an [`Address`], a `&str`/`String` to parse, or a path.
pub trait IntoAddress {
    /// Converts, or says why the text is not an address.
    fn into_address(self) -> Result<Address, AddressError>;
}

impl IntoAddress for Address {
    fn into_address(self) -> Result<Address, AddressError> {
        Ok(self)
    }
}
impl IntoAddress for &Address {
    fn into_address(self) -> Result<Address, AddressError> {
        Ok(self.clone())
    }
}
impl IntoAddress for &str {
    fn into_address(self) -> Result<Address, AddressError> {
        self.parse()
    }
}
impl IntoAddress for String {
    fn into_address(self) -> Result<Address, AddressError> {
        self.parse()
    }
}
impl IntoAddress for &String {
    fn into_address(self) -> Result<Address, AddressError> {
        self.parse()
    }
}
impl IntoAddress for PathBuf {
    fn into_address(self) -> Result<Address, AddressError> {
        Ok(Address::Unix(self))
    }
}
impl IntoAddress for &std::path::Path {
    fn into_address(self) -> Result<Address, AddressError> {
        Ok(Address::Unix(self.to_owned()))
    }
}
impl IntoAddress for &PathBuf {
    fn into_address(self) -> Result<Address, AddressError> {
        Ok(Address::Unix(self.clone()))
    }
}
