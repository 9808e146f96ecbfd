//! Why a connection ended: one value, set once by the core, that every pending call and
//! subscriber is told.

use std::fmt;
use std::io;

use crate::{FrameError, QmpError};

/// Why the connection ended. The core keeps the first reason it is given; later ones are
/// ignored, so a call, a subscriber and the driver all see the same one.
///
/// ```
/// use qmp_proto::client::CloseReason;
///
/// let why = CloseReason::io(qmp_proto::client::IoStage::Read, &std::io::Error::from(std::io::ErrorKind::ConnectionReset));
/// assert_eq!(why.io_kind(), Some(std::io::ErrorKind::ConnectionReset));
/// assert!(why.to_string().starts_with("read error"));
/// assert!(CloseReason::PeerClosed.is_peer_end());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed the connection between messages.
    PeerClosed,
    /// The peer closed the connection with a message begun and not ended.
    ClosedMidMessage,
    /// The peer closed the connection before it sent the greeting the client waited for.
    NoGreeting,
    /// Reading, writing or waiting on the socket failed.
    Io {
        /// What the driver was doing.
        during: IoStage,
        /// The error's kind.
        kind: io::ErrorKind,
        /// The error's text.
        message: String,
    },
    /// A message grew past the size cap.
    TooLarge {
        /// The cap in force, in bytes.
        limit: usize,
    },
    /// The peer's bytes could not be cut into messages (nesting past the depth cap, a byte
    /// that cannot be JSON).
    BadFrame(FrameError),
    /// A complete message did not decode as QMP.
    Undecodable {
        /// The decoder's complaint.
        error: String,
        /// The message's first bytes, as text.
        excerpt: String,
    },
    /// The server answered `qmp_capabilities` with an error.
    NegotiationRefused(QmpError),
    /// Every client handle was dropped (or the client was shut down).
    ClientDropped,
    /// Encoding a request panicked half-way, leaving a partial request that cannot be sent.
    EncodingPanicked,
    /// The driver stopped without giving a reason (it panicked, or its runtime shut down).
    DriverStopped,
}

/// What the driver was doing when an I/O error ended the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoStage {
    /// Reading.
    Read,
    /// Writing, before any byte of the request was sent.
    Write,
    /// Writing, after part of a request was sent (the stream is out of step).
    WriteAfterPartial,
    /// Waiting for the socket to be ready.
    Wait,
    /// Setting the socket up (a read timeout).
    Setup,
}

impl CloseReason {
    /// The reason for an I/O error.
    pub fn io(during: IoStage, e: &io::Error) -> Self {
        CloseReason::Io { during, kind: e.kind(), message: e.to_string() }
    }

    /// The reason for a frame the framer refused.
    pub fn frame(e: FrameError) -> Self {
        match e {
            FrameError::TooLarge { limit } => CloseReason::TooLarge { limit },
            other => CloseReason::BadFrame(other),
        }
    }

    /// The I/O error's kind, when an I/O error ended the connection.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            CloseReason::Io { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// True when the peer ended the connection (a close, or a reset by the peer).
    pub fn is_peer_end(&self) -> bool {
        match self {
            CloseReason::PeerClosed | CloseReason::ClosedMidMessage | CloseReason::NoGreeting => true,
            CloseReason::Io { kind, .. } => {
                matches!(kind, io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe)
            }
            _ => false,
        }
    }

    /// True when the peer broke the protocol (a message too large, undecodable, or
    /// unframeable).
    pub fn is_protocol_fault(&self) -> bool {
        matches!(
            self,
            CloseReason::TooLarge { .. } | CloseReason::BadFrame(_) | CloseReason::Undecodable { .. }
        )
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::PeerClosed => f.write_str("the peer closed the connection"),
            CloseReason::ClosedMidMessage => {
                f.write_str("the peer closed the connection in the middle of a message")
            }
            CloseReason::NoGreeting => f.write_str("the peer closed the connection before the greeting"),
            CloseReason::Io { during, message, .. } => {
                let what = match during {
                    IoStage::Read => "read error",
                    IoStage::Write => "write error",
                    IoStage::WriteAfterPartial => "write error after part of a request was sent",
                    IoStage::Wait => "socket error",
                    IoStage::Setup => "cannot set up the socket",
                };
                write!(f, "{what}: {message}")
            }
            CloseReason::TooLarge { limit } => {
                write!(f, "protocol error: {}", FrameError::TooLarge { limit: *limit })
            }
            CloseReason::BadFrame(e) => write!(f, "protocol error: {e}"),
            CloseReason::Undecodable { error, excerpt } => {
                write!(f, "protocol error: {error} in message {excerpt:?}")
            }
            CloseReason::NegotiationRefused(e) => write!(f, "the server refused qmp_capabilities: {e}"),
            CloseReason::ClientDropped => f.write_str("client dropped"),
            CloseReason::EncodingPanicked => f.write_str("a request's encoding panicked"),
            CloseReason::DriverStopped => f.write_str("the connection's driver stopped"),
        }
    }
}
