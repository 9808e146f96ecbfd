//! The QMP message model: what a server sends (greeting, response, event) and what a client
//! sends (request). Members this model does not know are kept in `extra`, so a newer QEMU never
//! breaks decoding, and a message of no known shape decodes as [`Message::Unknown`].

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// A message sent by a QMP server.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Message {
    /// The greeting sent once on connect.
    Greeting(Greeting),
    /// The reply to one request.
    Response(Response),
    /// An asynchronous event.
    Event(Event),
    /// A JSON object of no known shape, kept whole.
    Unknown(Map<String, Value>),
}

/// The greeting: `{"QMP": {"version": ..., "capabilities": [...]}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Greeting {
    /// The server's version.
    pub version: Version,
    /// Capabilities the server offers, such as `"oob"`.
    pub capabilities: Vec<String>,
    /// Members this model does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Greeting {
    /// True when the server offers out-of-band execution.
    pub fn offers_oob(&self) -> bool {
        self.capabilities.iter().any(|c| c == "oob")
    }
}

/// A server version, as in the greeting and `query-version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// The numeric version.
    pub qemu: VersionTriple,
    /// The distributor's package string, possibly empty.
    pub package: String,
}

/// `major.minor.micro`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VersionTriple {
    /// Major version.
    pub major: i64,
    /// Minor version.
    pub minor: i64,
    /// Micro version.
    pub micro: i64,
}

impl fmt::Display for VersionTriple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.micro)
    }
}

/// The reply to one request.
#[derive(Debug, Clone)]
pub struct Response {
    /// The request's `id`, echoed as sent; absent when the request had none or the server
    /// rejected it before reading one.
    pub id: Option<Value>,
    /// The command's return value (raw JSON, decoded by the caller into its own type), or the
    /// error the server answered.
    pub result: Result<Box<RawValue>, QmpError>,
    /// Members this model does not know.
    pub extra: Map<String, Value>,
}

impl PartialEq for Response {
    fn eq(&self, other: &Self) -> bool {
        let same_result = match (&self.result, &other.result) {
            (Ok(a), Ok(b)) => a.get() == b.get(),
            (Err(a), Err(b)) => a == b,
            _ => false,
        };
        same_result && self.id == other.id && self.extra == other.extra
    }
}

/// An error answered by the server: `{"error": {"class": ..., "desc": ...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{class}: {desc}")]
pub struct QmpError {
    /// The error class.
    pub class: ErrorClass,
    /// The human-readable description.
    pub desc: String,
    /// Members this model does not know (boxed: rarely any, and an ordered map is large, which
    /// every `Result` carrying this error would pay for).
    #[serde(flatten)]
    pub extra: Box<Map<String, Value>>,
}

impl QmpError {
    /// An error of `class` with text `desc`.
    pub fn new(class: ErrorClass, desc: impl Into<String>) -> Self {
        QmpError { class, desc: desc.into(), extra: Box::default() }
    }
}

/// A QMP error class. The five classes QEMU uses have their own variant; any other is kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// Most errors.
    GenericError,
    /// The command does not exist (or negotiation has not happened).
    CommandNotFound,
    /// A device exists but is not active.
    DeviceNotActive,
    /// A named device does not exist.
    DeviceNotFound,
    /// KVM lacks a capability.
    KVMMissingCap,
    /// A class this model does not know, kept as sent.
    Other(String),
}

impl ErrorClass {
    /// The class as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorClass::GenericError => "GenericError",
            ErrorClass::CommandNotFound => "CommandNotFound",
            ErrorClass::DeviceNotActive => "DeviceNotActive",
            ErrorClass::DeviceNotFound => "DeviceNotFound",
            ErrorClass::KVMMissingCap => "KVMMissingCap",
            ErrorClass::Other(s) => s,
        }
    }
}

impl From<&str> for ErrorClass {
    fn from(s: &str) -> Self {
        match s {
            "GenericError" => ErrorClass::GenericError,
            "CommandNotFound" => ErrorClass::CommandNotFound,
            "DeviceNotActive" => ErrorClass::DeviceNotActive,
            "DeviceNotFound" => ErrorClass::DeviceNotFound,
            "KVMMissingCap" => ErrorClass::KVMMissingCap,
            other => ErrorClass::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorClass {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorClass {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(ErrorClass::from(&*s))
    }
}

/// An event's time stamp, taken by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// Microseconds within that second.
    pub microseconds: i64,
}

/// An asynchronous event: `{"event": NAME, "data": {...}, "timestamp": {...}}`.
#[derive(Debug, Clone)]
pub struct Event {
    /// The event's name, such as `STOP`.
    pub name: String,
    /// The event's data, raw; absent for events without data.
    pub data: Option<Box<RawValue>>,
    /// When the server emitted it.
    pub timestamp: Timestamp,
    /// Members this model does not know.
    pub extra: Map<String, Value>,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.data.as_ref().map(|d| d.get()) == other.data.as_ref().map(|d| d.get())
            && self.timestamp == other.timestamp
            && self.extra == other.extra
    }
}

impl Event {
    /// The data decoded as `T` (an empty object when the event has none).
    pub fn data_as<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(self.data.as_ref().map_or("{}", |d| d.get()))
    }

    /// The data as a JSON value (`Value::Null` when the event has none).
    pub fn data_value(&self) -> Value {
        self.data.as_ref().and_then(|d| serde_json::from_str(d.get()).ok()).unwrap_or(Value::Null)
    }

    /// The event as the JSON object the server sent (members in QMP's usual order).
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("event".into(), Value::String(self.name.clone()));
        if self.data.is_some() {
            obj.insert("data".into(), self.data_value());
        }
        obj.insert(
            "timestamp".into(),
            serde_json::json!({"seconds": self.timestamp.seconds, "microseconds": self.timestamp.microseconds}),
        );
        obj.extend(self.extra.clone());
        Value::Object(obj)
    }
}

/// Why bytes did not decode as a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not valid JSON, or a known member has the wrong type.
    #[error("invalid JSON from peer: {0}")]
    Json(#[from] serde_json::Error),
}

impl Message {
    /// Decodes one framed server message.
    ///
    /// ```
    /// use qmp_proto::Message;
    ///
    /// let msg = Message::from_slice(br#"{"return": {"running": true}, "id": 7}"#).unwrap();
    /// let Message::Response(resp) = msg else { panic!() };
    /// assert_eq!(resp.id, Some(7.into()));
    /// assert_eq!(resp.result.unwrap().get(), r#"{"running": true}"#);
    /// ```
    pub fn from_slice(bytes: &[u8]) -> Result<Message, DecodeError> {
        let text = utf8_text(bytes);
        // An event exactly as QEMU writes it is read without serde's walk (same result).
        if let Some(event) =
            text.filter(|t| t.starts_with(r#"{"timestamp": {"#)).and_then(crate::qemu_event::parse)
        {
            return Ok(Message::Event(event));
        }
        Self::from_text(bytes, text)
    }

    /// [`Message::from_slice`] without the fast read of QEMU's event shape, given `bytes` as
    /// text when it is UTF-8. One check of the whole message, then serde's `str` reader: its
    /// slice reader checks every string on its own, which costs an eighth of an event's decode.
    /// Text that is not UTF-8 takes the slice reader, to be refused with its usual error.
    pub(crate) fn from_text(bytes: &[u8], text: Option<&str>) -> Result<Message, DecodeError> {
        let raw: RawMessage = match text {
            Some(text) => serde_json::from_str(text)?,
            None => serde_json::from_slice(bytes)?,
        };
        Ok(raw.classify())
    }
}

/// `bytes` as text when it is UTF-8, checked with a word-at-a-time ASCII test first: QMP's
/// messages nearly always are ASCII, and `from_utf8` costs several times as much on a short
/// one.
///
/// ```
/// assert_eq!(qmp_proto::utf8_text(b"{}"), Some("{}"));
/// assert_eq!(qmp_proto::utf8_text("\"é\"".as_bytes()), Some("\"é\""));
/// assert_eq!(qmp_proto::utf8_text(b"\xff"), None);
/// ```
pub fn utf8_text(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII is valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
}

/// Every member a server message may have, filled in one pass over the object.
#[derive(Default)]
struct RawMessage {
    qmp: Option<Value>,
    ret: Option<Box<RawValue>>,
    error: Option<QmpError>,
    event: Option<String>,
    data: Option<Box<RawValue>>,
    timestamp: Option<Timestamp>,
    id: Option<Value>,
    extra: Map<String, Value>,
}

impl RawMessage {
    fn classify(self) -> Message {
        let RawMessage { qmp, ret, error, event, data, timestamp, id, mut extra } = self;
        if let Some(qmp) = qmp {
            if let Ok(g) = serde_json::from_value::<Greeting>(qmp.clone()) {
                return Message::Greeting(g);
            }
            extra.insert("QMP".into(), qmp);
        }
        if let Some(name) = event {
            if ret.is_none() && error.is_none() {
                if let Some(id) = id {
                    extra.insert("id".into(), id); // not an event member: kept with the unknown ones
                }
                return Message::Event(Event { name, data, timestamp: timestamp.unwrap_or_default(), extra });
            }
            extra.insert("event".into(), Value::String(name));
        }
        let put_back =
            |extra: &mut Map<String, Value>, data: Option<Box<RawValue>>, ts: Option<Timestamp>| {
                if let Some(d) = data {
                    extra.insert("data".into(), serde_json::from_str(d.get()).unwrap_or(Value::Null));
                }
                if let Some(ts) = ts {
                    extra.insert("timestamp".into(), serde_json::to_value(ts).unwrap_or(Value::Null));
                }
            };
        let result = match (ret, error) {
            (Some(r), None) => Ok(r),
            (None, Some(e)) => Err(e),
            (ret, error) => {
                // Neither or both: not a response we can route.
                put_back(&mut extra, data, timestamp);
                if let Some(r) = ret {
                    extra.insert("return".into(), serde_json::from_str(r.get()).unwrap_or(Value::Null));
                }
                if let Some(e) = error {
                    extra.insert("error".into(), serde_json::to_value(e).unwrap_or(Value::Null));
                }
                if let Some(id) = id {
                    extra.insert("id".into(), id);
                }
                return Message::Unknown(extra);
            }
        };
        put_back(&mut extra, data, timestamp);
        Message::Response(Response { id, result, extra })
    }
}

impl<'de> Deserialize<'de> for RawMessage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawMessage;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a QMP message object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawMessage, A::Error> {
                let mut m = RawMessage::default();
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Return => m.ret = Some(map.next_value()?),
                        Key::Error => m.error = Some(map.next_value()?),
                        Key::Event => m.event = Some(map.next_value()?),
                        Key::Data => m.data = Some(map.next_value()?),
                        Key::Timestamp => m.timestamp = Some(map.next_value()?),
                        Key::Id => m.id = Some(map.next_value()?),
                        Key::Qmp => m.qmp = Some(map.next_value()?),
                        Key::Other(name) => {
                            let v: Value = map.next_value()?;
                            m.extra.insert(name, v);
                        }
                    }
                }
                Ok(m)
            }
        }
        d.deserialize_map(V)
    }
}

/// A request sent by a client: `{"execute": NAME, "arguments": {...}, "id": ...}`, or
/// `exec-oob` in place of `execute` for out-of-band execution.
///
/// ```
/// use qmp_proto::Request;
///
/// let req: Request = serde_json::from_str(r#"{"exec-oob": "yank", "id": null}"#).unwrap();
/// assert!(req.oob);
/// assert_eq!(req.id, Some(serde_json::Value::Null)); // echoed as sent, as QEMU does
/// assert_eq!(serde_json::to_string(&req).unwrap(), r#"{"exec-oob":"yank","id":null}"#);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The command's name.
    pub execute: String,
    /// The arguments, if any.
    pub arguments: Option<Map<String, Value>>,
    /// Any JSON value, echoed in the reply (`Some(Value::Null)` for `"id": null`).
    pub id: Option<Value>,
    /// True for `exec-oob`.
    pub oob: bool,
}

impl Serialize for Request {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry(if self.oob { "exec-oob" } else { "execute" }, &self.execute)?;
        if let Some(args) = &self.arguments {
            map.serialize_entry("arguments", args)?;
        }
        if let Some(id) = &self.id {
            map.serialize_entry("id", id)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Request {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Request;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a QMP request object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Request, A::Error> {
                use serde::de::Error;
                let (mut execute, mut exec_oob, mut arguments, mut id) = (None, None, None, None);
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match &*key {
                        "execute" => execute = Some(map.next_value::<String>()?),
                        "exec-oob" => exec_oob = Some(map.next_value::<String>()?),
                        // `null` arguments mean none, as QEMU reads them.
                        "arguments" => arguments = map.next_value::<Option<Map<String, Value>>>()?,
                        // Kept as sent, `null` too: QEMU echoes `"id": null`.
                        "id" => id = Some(map.next_value::<Value>()?),
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                let (execute, oob) = match (execute, exec_oob) {
                    (Some(name), None) => (name, false),
                    (None, Some(name)) => (name, true),
                    (None, None) => return Err(A::Error::missing_field("execute")),
                    (Some(_), Some(_)) => return Err(A::Error::custom("'execute' clashes with 'exec-oob'")),
                };
                Ok(Request { execute, arguments, id, oob })
            }
        }
        d.deserialize_map(V)
    }
}

/// A member name of a server message, matched without allocating (serde's `Cow<str>` always
/// allocates); only unknown names are kept as owned strings.
enum Key {
    Return,
    Error,
    Event,
    Data,
    Timestamp,
    Id,
    Qmp,
    Other(String),
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KV;
        impl<'de> Visitor<'de> for KV {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "return" => Key::Return,
                    "error" => Key::Error,
                    "event" => Key::Event,
                    "data" => Key::Data,
                    "timestamp" => Key::Timestamp,
                    "id" => Key::Id,
                    "QMP" => Key::Qmp,
                    other => Key::Other(other.to_owned()),
                })
            }
        }
        d.deserialize_identifier(KV)
    }
}
