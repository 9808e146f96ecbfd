//! Where a QMP server lives: a unix socket path, a TCP `host:port`, a TLS `host:port`, or,
//! for the guest agent, a vsock `CID:PORT` or a serial device (a tty).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A QMP server address.
///
/// Parsed from `unix:PATH`, `tcp:HOST:PORT`, `tls:HOST:PORT`, `vsock:CID:PORT`,
/// `serial:PATH`, `HOST:PORT` (when PORT is a number and the text holds no `/`), or else a
/// plain unix socket path (a plain path is never taken for a serial device:
/// [`Address::detect_path`] tells the two apart by looking at the file):
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
/// assert_eq!("vsock:3:1234".parse::<Address>().unwrap(), Address::Vsock { cid: 3, port: 1234 });
/// assert_eq!("serial:/dev/pts/4".parse::<Address>().unwrap(), Address::Serial("/dev/pts/4".into()));
/// assert_eq!("/dev/pts/4".parse::<Address>().unwrap(), Address::Unix("/dev/pts/4".into()));
/// assert!("vsock:3".parse::<Address>().is_err());
/// assert_eq!(Address::Vsock { cid: 3, port: 1234 }.to_string(), "vsock:3:1234");
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
    /// A vsock stream socket to `cid:port` (`AF_VSOCK`): the guest agent started with
    /// `-m vsock-listen -p CID:PORT`, reached from the host by the guest's CID. Carries bytes
    /// only (no fd passing).
    Vsock {
        /// The context id of the machine (the guest's `guest-cid`).
        cid: u32,
        /// The port the agent listens on.
        port: u32,
    },
    /// A serial device: a terminal (tty) that carries the protocol as a byte stream, such as
    /// the host end of a guest's serial port (QEMU's `-chardev pty` makes a `/dev/pts/N`) for
    /// the guest agent started with `-m isa-serial`. The client puts the terminal in raw mode;
    /// the channel outlives the connection, so a new client should
    /// [`guest_sync`](crate::Client::guest_sync) before anything else.
    Serial(PathBuf),
}

impl Address {
    /// The address for a plain `path`, by what the file is: [`Address::Serial`] for a
    /// character device (a tty, a virtio-serial port), [`Address::Unix`] for anything else,
    /// a path that does not exist (yet) included. Symbolic links are followed.
    ///
    /// ```
    /// use qmp::Address;
    ///
    /// assert_eq!(Address::detect_path("/dev/null"), Address::Serial("/dev/null".into()));
    /// assert_eq!(Address::detect_path("/run/nothing.sock"), Address::Unix("/run/nothing.sock".into()));
    /// ```
    pub fn detect_path(path: impl AsRef<Path>) -> Address {
        use std::os::unix::fs::FileTypeExt;
        let path = path.as_ref();
        match std::fs::metadata(path) {
            Ok(m) if m.file_type().is_char_device() => Address::Serial(path.to_owned()),
            _ => Address::Unix(path.to_owned()),
        }
    }
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
        if let Some(cidport) = s.strip_prefix("vsock:") {
            let numbers =
                cidport.split_once(':').and_then(|(cid, port)| Some((cid.parse().ok()?, port.parse().ok()?)));
            return match numbers {
                Some((cid, port)) => Ok(Address::Vsock { cid, port }),
                None => Err(err("vsock: needs CID:PORT, two numbers (0 to 4294967295)")),
            };
        }
        if let Some(path) = s.strip_prefix("serial:") {
            if path.is_empty() {
                return Err(err("serial: needs the path of a serial device (a tty)"));
            }
            return Ok(Address::Serial(path.into()));
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
            Address::Vsock { cid, port } => write!(f, "vsock:{cid}:{port}"),
            Address::Serial(p) => write!(f, "serial:{}", p.display()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Address, AddressError> {
        s.parse()
    }

    #[test]
    fn vsock_takes_two_numbers() {
        assert_eq!(parse("vsock:3:1234"), Ok(Address::Vsock { cid: 3, port: 1234 }));
        assert_eq!(
            parse("vsock:4294967295:4294967295"),
            Ok(Address::Vsock { cid: u32::MAX, port: u32::MAX })
        );
        for bad in [
            "vsock:",
            "vsock:3",
            "vsock:3:",
            "vsock::1234",
            "vsock:x:1",
            "vsock:3:y",
            "vsock:-1:1",
            "vsock:4294967296:1",
            "vsock:3:1:2",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("invalid QMP address {bad:?}: vsock: needs CID:PORT, two numbers (0 to 4294967295)")
            );
        }
    }

    #[test]
    fn serial_takes_a_path() {
        assert_eq!(parse("serial:/dev/pts/7"), Ok(Address::Serial("/dev/pts/7".into())));
        assert_eq!(parse("serial:ttyS0"), Ok(Address::Serial("ttyS0".into())));
        assert!(parse("serial:").unwrap_err().to_string().contains("serial: needs the path"));
        // A plain path stays a unix socket: only the file tells (detect_path).
        assert_eq!(parse("/dev/ttyS0"), Ok(Address::Unix("/dev/ttyS0".into())));
    }

    #[test]
    fn display_parses_back() {
        for a in [
            Address::Vsock { cid: 2, port: 9 },
            Address::Serial("/dev/pts/3".into()),
            Address::Unix("/run/q.sock".into()),
            Address::Tcp("localhost:4444".into()),
            Address::Tls("127.0.0.1:4444".into()),
        ] {
            assert_eq!(parse(&a.to_string()), Ok(a.clone()), "{a}");
        }
        assert_eq!(Address::Serial("/dev/pts/3".into()).to_string(), "serial:/dev/pts/3");
    }

    #[test]
    fn detect_path_tells_a_character_device_from_a_socket() {
        assert_eq!(Address::detect_path("/dev/null"), Address::Serial("/dev/null".into()));
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("qga.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert_eq!(Address::detect_path(&sock), Address::Unix(sock.clone()));
        let missing = dir.path().join("missing");
        assert_eq!(Address::detect_path(&missing), Address::Unix(missing.clone()));
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert_eq!(Address::detect_path(&file), Address::Unix(file.clone()));
        // A link to a device is the device (/dev/virtio-ports/NAME are links).
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        assert_eq!(Address::detect_path(&link), Address::Serial(link.clone()));
    }
}
