//! How the simulator's listeners take clients: one at a time, as a QEMU monitor does (the
//! default), or any number at once ([`SimOptions::many_clients`](super::SimOptions)).
//!
//! QEMU stops accepting on a monitor's socket while a client is connected: a second
//! client's `connect()` succeeds (the kernel queues it) but it gets no greeting until the
//! first leaves. Serving a listener's clients in turn, accepting the next only after the one
//! before has gone, gives exactly that.

use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::server::Server;

/// A listener whose connections the simulator serves.
pub(crate) trait Accept: Send + 'static {
    /// A connection.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Waits for the next connection.
    fn next(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

impl Accept for UnixListener {
    type Stream = UnixStream;
    async fn next(&self) -> io::Result<UnixStream> {
        self.accept().await.map(|(s, _)| s)
    }
}

impl Accept for TcpListener {
    type Stream = TcpStream;
    async fn next(&self) -> io::Result<TcpStream> {
        let (s, _) = self.accept().await?;
        s.set_nodelay(true)?;
        Ok(s)
    }
}

/// The first pause after a failed `accept()`; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(10);
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Serves `listener`'s clients one after another until the server shuts down. A failed
/// `accept()` (out of descriptors, say) is logged and tried again after a pause.
pub(crate) async fn one_at_a_time<L: Accept>(server: Server, listener: L) -> io::Result<()> {
    let mut pause = FIRST_PAUSE;
    loop {
        let accepted = tokio::select! {
            r = listener.next() => r,
            _ = server.wait_shutdown() => return Ok(()),
        };
        match accepted {
            Ok(stream) => {
                pause = FIRST_PAUSE;
                // Whatever ended the connection, the monitor is free for the next client.
                let _ = server.serve_stream(stream).await;
            }
            Err(e) => {
                tracing::warn!("QMP monitor cannot accept a connection ({e}); trying again in {pause:?}");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = server.wait_shutdown() => return Ok(()),
                }
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
        if server.is_shut_down() {
            return Ok(());
        }
    }
}
