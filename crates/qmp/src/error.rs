//! The client's error type. A QMP error answered by the server keeps its class and text.

use std::io;

use qmp_proto::QmpError;

use crate::address::AddressError;

/// What can go wrong with a QMP call or connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered the command with an error (class and description kept).
    #[error("{0}")]
    Qmp(#[from] QmpError),
    /// The connection is gone (the peer closed or died, or a fatal protocol fault ended it);
    /// the text says why. Every pending call and subscriber ends with this at once.
    #[error("connection closed: {0}")]
    Disconnected(String),
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
    /// The peer broke the protocol (no greeting, a malformed message, a message over the cap).
    #[error("protocol error: {0}")]
    Protocol(String),
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
            qmp_qapi::ReplyError::Malformed(text) => Error::Protocol(text),
            other => Error::Protocol(other.to_string()),
        }
    }
}

impl Error {
    /// The server's error, when the failure is one.
    pub fn qmp_error(&self) -> Option<&QmpError> {
        match self {
            Error::Qmp(e) => Some(e),
            _ => None,
        }
    }

    /// True when the connection is gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Error::Disconnected(_))
    }

    /// True when the call timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout)
    }

    /// True for failures to reach the server at all (connect, accept, address).
    pub fn is_connect(&self) -> bool {
        matches!(self, Error::Connect { .. } | Error::Address(_))
    }
}

/// Shorthand for `Result<T, qmp::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
