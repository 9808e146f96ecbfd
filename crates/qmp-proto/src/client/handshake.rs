//! The handshake, as states consumed by value: the greeting awaited, then `qmp_capabilities`
//! to send, then its reply awaited, then ready. The guest agent has none: it starts ready.

use crate::{Greeting, QmpError, Response};

/// Where the handshake stands. Each state is a type whose step consumes it and returns the
/// next, so a step cannot be taken twice or out of order.
///
/// ```
/// use qmp_proto::client::Handshake;
///
/// let Handshake::Greeting(await_greeting) = Handshake::qmp(true) else { unreachable!() };
/// let greeting: qmp_proto::Greeting = serde_json::from_str(
///     r#"{"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": ""}, "capabilities": ["oob"]}"#,
/// ).unwrap();
/// let Handshake::Capabilities(send) = await_greeting.greeted(&greeting) else { unreachable!() };
/// let mut out = Vec::new();
/// let waiting = send.encode(&mut out, 1);
/// assert_eq!(out, b"{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[\"oob\"]},\"id\":1}\n");
/// assert_eq!(waiting.id(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// Waiting for the server's greeting.
    Greeting(AwaitGreeting),
    /// `qmp_capabilities` is to be sent.
    Capabilities(SendCapabilities),
    /// `qmp_capabilities` was sent; waiting for its reply.
    Negotiating(AwaitCapabilities),
    /// Command mode.
    Ready(Ready),
}

impl Handshake {
    /// QEMU's handshake: the greeting, then `qmp_capabilities`, enabling oob when `oob` and
    /// the server offers it.
    pub fn qmp(oob: bool) -> Self {
        Self::new(true, true, oob)
    }

    /// No handshake (the guest agent: no greeting, no negotiation).
    pub fn none() -> Self {
        Handshake::Ready(Ready { oob: false })
    }

    /// The steps chosen one by one: wait for a greeting or not, negotiate or not (without a
    /// greeting no oob can be seen offered, so none is asked for).
    pub fn new(await_greeting: bool, negotiate: bool, oob: bool) -> Self {
        match (await_greeting, negotiate) {
            (true, _) => Handshake::Greeting(AwaitGreeting { negotiate, oob }),
            (false, true) => Handshake::Capabilities(SendCapabilities { oob: false }),
            (false, false) => Self::none(),
        }
    }

    /// True in command mode.
    pub fn is_ready(&self) -> bool {
        matches!(self, Handshake::Ready(_))
    }
}

/// Waiting for the greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwaitGreeting {
    negotiate: bool,
    oob: bool,
}

impl AwaitGreeting {
    /// The greeting came: negotiation is next (asking for oob when wanted and offered), or
    /// command mode when no negotiation was asked for.
    pub fn greeted(self, greeting: &Greeting) -> Handshake {
        if self.negotiate {
            Handshake::Capabilities(SendCapabilities { oob: self.oob && greeting.offers_oob() })
        } else {
            Handshake::Ready(Ready { oob: false })
        }
    }
}

/// `qmp_capabilities` is to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendCapabilities {
    oob: bool,
}

impl SendCapabilities {
    /// True when oob will be asked for.
    pub fn oob(&self) -> bool {
        self.oob
    }

    /// Appends the request to `out`, sent with `id`.
    pub fn encode(self, out: &mut Vec<u8>, id: u64) -> AwaitCapabilities {
        let args = if self.oob { serde_json::json!({"enable": ["oob"]}) } else { serde_json::Value::Null };
        // Encoding a literal object into a Vec cannot fail.
        let _ = crate::encode_request(out, "qmp_capabilities", &args, Some(&id), false);
        AwaitCapabilities { id, oob: self.oob }
    }
}

/// `qmp_capabilities` was sent with [`id`](Self::id); its reply ends the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwaitCapabilities {
    id: u64,
    oob: bool,
}

impl AwaitCapabilities {
    /// The id the request was sent with.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The reply came: command mode, or the server's refusal.
    pub fn answered(self, reply: Response) -> Result<Ready, QmpError> {
        reply.result.map(|_| Ready { oob: self.oob })
    }
}

/// Command mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    oob: bool,
}

impl Ready {
    /// True when out-of-band execution was negotiated.
    pub fn oob(&self) -> bool {
        self.oob
    }
}
