//! The client's error type. A QMP error answered by the server keeps its class and text; why
//! a connection closed is the core's [`CloseReason`], kept whole.

use std::fmt;
use std::io;
use std::time::Duration;

use qmp_proto::client::CloseReason;
use qmp_proto::{ErrorClass, QmpError};

use crate::address::AddressError;

/// What can go wrong with a QMP call or connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered the command with an error (class and description kept).
    #[error("{0}")]
    Qmp(#[from] QmpError),
    /// The connection is gone (the peer closed or died, a fatal protocol fault ended it, the
    /// server refused the negotiation); the reason says which. Every pending call and
    /// subscriber ends with this at once.
    #[error("connection closed: {0}")]
    Disconnected(CloseReason),
    /// The call's timeout ran out before the reply came. The connection is still usable: a
    /// late reply is discarded, never handed to another call.
    #[error("timed out waiting for the reply")]
    Timeout,
    /// Connecting or accepting failed.
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// The address tried.
        address: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Another I/O error.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The address did not parse.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// The peer broke the protocol without ending the connection (a reply that is not a QMP
    /// reply), or did not finish the negotiation in time.
    #[error("protocol error: {0}")]
    Protocol(ProtocolFault),
    /// Arguments did not encode, or a return value did not decode into the expected type.
    #[error("{context}: {source}")]
    Json {
        /// What was being encoded or decoded.
        context: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// The operation is not possible on this connection (fd passing over TCP, `exec-oob`
    /// without oob negotiated, ...).
    #[error("{0}")]
    Unsupported(String),
    /// The arguments do not fit the command's schema (checked before sending, with
    /// [`ClientBuilder::check_arguments`](crate::ClientBuilder::check_arguments)); nothing
    /// was sent.
    #[error("invalid arguments for {command}: {}", crate::schema::join_problems(.problems))]
    InvalidArguments {
        /// The command.
        command: String,
        /// What is wrong, each with its path.
        problems: Vec<crate::SchemaProblem>,
    },
}

impl From<qmp_qapi::ReplyError> for Error {
    fn from(e: qmp_qapi::ReplyError) -> Self {
        match e {
            qmp_qapi::ReplyError::Qmp(e) => Error::Qmp(e),
            qmp_qapi::ReplyError::Json { context, source } => Error::Json { context, source },
            qmp_qapi::ReplyError::Malformed(text) => Error::Protocol(ProtocolFault::MalformedReply(text)),
            other => Error::Protocol(ProtocolFault::MalformedReply(other.to_string())),
        }
    }
}

/// How the peer broke the protocol, when the connection goes on (or never began): a fault that
/// ends the connection is its [`CloseReason`] instead.
///
/// ```
/// use std::time::Duration;
/// use qmp::{NegotiationStep, ProtocolFault};
///
/// let late = ProtocolFault::NegotiationTimeout { step: NegotiationStep::Greeting, bound: Duration::from_secs(5) };
/// assert_eq!(late.to_string(), "no greeting within 5s of connecting (the negotiation timeout)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolFault {
    /// A step of the negotiation did not come within its bound
    /// ([`ClientBuilder::negotiation_timeout`](crate::ClientBuilder::negotiation_timeout)).
    NegotiationTimeout {
        /// The step missed.
        step: NegotiationStep,
        /// The bound on the whole negotiation.
        bound: Duration,
    },
    /// A reply that is not a QMP reply (not UTF-8, or with neither or both of `return` and
    /// `error`).
    MalformedReply(String),
    /// The guest agent kept answering `guest-sync-delimited` with tokens other than the one
    /// sent (see [`Client::guest_sync`](crate::Client::guest_sync)).
    AgentOutOfSync {
        /// The token last sent.
        sent: i64,
        /// What it came back with last.
        answered: serde_json::Value,
    },
    /// The guest agent did not answer `guest-sync-delimited` in time: it is not running in
    /// the guest, or is still busy with an earlier client's command.
    AgentSilent {
        /// How long it was given.
        after: std::time::Duration,
    },
}

/// A step of the negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NegotiationStep {
    /// The server's greeting.
    Greeting,
    /// The reply to `qmp_capabilities`.
    Capabilities,
    /// The TLS handshake, before the greeting.
    TlsHandshake,
}

impl fmt::Display for ProtocolFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolFault::NegotiationTimeout { step, bound } => {
                let step = match step {
                    NegotiationStep::Greeting => "greeting",
                    NegotiationStep::Capabilities => "reply to qmp_capabilities",
                    NegotiationStep::TlsHandshake => "TLS handshake",
                };
                write!(f, "no {step} within {bound:?} of connecting (the negotiation timeout)")
            }
            ProtocolFault::MalformedReply(text) => f.write_str(text),
            ProtocolFault::AgentOutOfSync { sent, answered } => write!(
                f,
                "the guest agent answered guest-sync-delimited with {answered}, not {sent} ({} tries)",
                crate::ga::sync::ATTEMPTS
            ),
            ProtocolFault::AgentSilent { after } => write!(
                f,
                "the guest agent did not answer guest-sync-delimited within {} s (is qemu-ga running in the guest?)",
                after.as_secs_f64()
            ),
        }
    }
}

impl Error {
    /// The server's error, when the failure is one: a command's, or the refusal of
    /// `qmp_capabilities` that ended the connection.
    ///
    /// ```
    /// use qmp::{Error, ErrorClass, QmpError};
    /// let err = Error::Qmp(QmpError::new(ErrorClass::DeviceNotFound, "Device 'x' not found"));
    /// assert_eq!(err.qmp_class(), Some(&ErrorClass::DeviceNotFound));
    /// assert!(!err.is_disconnect() && !err.is_timeout());
    /// ```
    pub fn qmp_error(&self) -> Option<&QmpError> {
        match self {
            Error::Qmp(e) | Error::Disconnected(CloseReason::NegotiationRefused(e)) => Some(e),
            _ => None,
        }
    }

    /// The class of the server's error, when the failure is one.
    pub fn qmp_class(&self) -> Option<&ErrorClass> {
        self.qmp_error().map(|e| &e.class)
    }

    /// True when the connection is gone ([`Error::Disconnected`]).
    pub fn is_disconnect(&self) -> bool {
        matches!(self, Error::Disconnected(_))
    }

    /// Why the connection closed, when that is the failure.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        match self {
            Error::Disconnected(why) => Some(why),
            _ => None,
        }
    }

    /// True when time ran out: a call's timeout, the negotiation's bound, or a
    /// [`ClientBuilder::wait`](crate::ClientBuilder::wait) for a starting server.
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Timeout | Error::Protocol(ProtocolFault::NegotiationTimeout { .. }) => true,
            Error::Connect { source, .. } => source.kind() == io::ErrorKind::TimedOut,
            _ => false,
        }
    }

    /// True for failures to reach the server at all (connect, accept, address).
    pub fn is_connect(&self) -> bool {
        matches!(self, Error::Connect { .. } | Error::Address(_))
    }
}

/// Shorthand for `Result<T, qmp::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
