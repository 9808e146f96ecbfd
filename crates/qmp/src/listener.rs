//! Server mode: a listening socket the peer (QEMU with `-qmp unix:PATH`) connects to.

use std::path::PathBuf;

use tokio::net::{TcpListener, UnixListener};

use crate::address::Address;
use crate::builder::ClientBuilder;
use crate::client::Client;
use crate::error::{Error, Result};

/// A listening socket for server mode: the peer (QEMU with `-qmp unix:PATH`) connects to us.
/// A unix socket is created with mode 0600 and removed when the listener is dropped.
pub struct Listener {
    inner: ListenerInner,
    builder: ClientBuilder,
}

enum ListenerInner {
    /// With the path to remove on drop (none for a listener handed in).
    Unix(UnixListener, Option<PathBuf>),
    Tcp(TcpListener),
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").field("address", &self.address().to_string()).finish()
    }
}

impl Listener {
    /// [`ClientBuilder::listen_fd`].
    pub(crate) fn from_fd(fd: std::os::fd::OwnedFd, builder: ClientBuilder) -> Result<Listener> {
        let err = |source| Error::Connect { address: "the given fd".into(), source };
        let inner = match crate::fd::listening(fd)? {
            crate::fd::Listening::Unix(l) => {
                l.set_nonblocking(true).map_err(err)?;
                ListenerInner::Unix(UnixListener::from_std(l).map_err(err)?, None)
            }
            crate::fd::Listening::Tcp(l) => {
                l.set_nonblocking(true).map_err(err)?;
                ListenerInner::Tcp(TcpListener::from_std(l).map_err(err)?)
            }
        };
        Ok(Listener { inner, builder })
    }

    pub(crate) fn bind(addr: Address, builder: ClientBuilder) -> Result<Listener> {
        let bind_err = |source| Error::Connect { address: addr.to_string(), source };
        let inner = match &addr {
            Address::Unix(path) => {
                // Mode 0600 from the first moment the socket exists at `path`.
                let listener = qmp_unix::bind_unix(path, 0o600).map_err(bind_err)?;
                listener.set_nonblocking(true).map_err(bind_err)?;
                ListenerInner::Unix(UnixListener::from_std(listener).map_err(bind_err)?, Some(path.clone()))
            }
            Address::Tls(_) => {
                return Err(Error::Unsupported(format!("cannot listen on {addr}: server mode has no TLS")))
            }
            Address::Vsock { .. } | Address::Serial(_) => {
                return Err(Error::Unsupported(format!(
                    "cannot listen on {addr}: server mode is for unix and TCP sockets"
                )))
            }
            Address::Tcp(hp) => {
                let std_listener = std::net::TcpListener::bind(hp.as_str()).map_err(bind_err)?;
                std_listener.set_nonblocking(true).map_err(bind_err)?;
                ListenerInner::Tcp(TcpListener::from_std(std_listener).map_err(bind_err)?)
            }
        };
        Ok(Listener { inner, builder })
    }

    /// The address the listener is bound to (with the real port for `host:0`).
    pub fn address(&self) -> Address {
        match &self.inner {
            ListenerInner::Unix(_, Some(path)) => Address::Unix(path.clone()),
            ListenerInner::Unix(l, None) => {
                let local = l.local_addr().ok();
                Address::Unix(
                    local.as_ref().and_then(|a| a.as_pathname()).map(PathBuf::from).unwrap_or_default(),
                )
            }
            ListenerInner::Tcp(l) => match l.local_addr() {
                Ok(a) => Address::Tcp(a.to_string()),
                Err(_) => Address::Tcp(String::new()),
            },
        }
    }

    /// Takes the next connection and runs the protocol on it as a client.
    pub async fn accept(&self) -> Result<Client> {
        let builder = self.builder.clone();
        let err = |source| Error::Connect { address: self.address().to_string(), source };
        match &self.inner {
            ListenerInner::Unix(l, _) => {
                let (stream, _) = l.accept().await.map_err(err)?;
                builder.connect_unix_stream(stream).await
            }
            ListenerInner::Tcp(l) => {
                let (stream, _) = l.accept().await.map_err(err)?;
                builder.connect_tcp_stream(stream).await
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let ListenerInner::Unix(_, Some(path)) = &self.inner {
            let _ = std::fs::remove_file(path);
        }
    }
}
