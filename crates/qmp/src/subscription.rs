//! Event subscriptions: each subscriber has its own bounded queue and filter, so a slow or
//! picky subscriber never blocks replies or other subscribers. When a queue is full the oldest
//! event is dropped and the subscriber is told how many it lost.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use qmp_proto::client::{CloseReason, EventQueue, Offer, Queued};
use qmp_proto::Event;
use serde_json::Value;
use tokio::sync::Notify;

use crate::error::Error;

/// Which events a subscriber wants: by name, by members of `data`, or by any predicate. All
/// given conditions must hold.
///
/// ```
/// use qmp::EventFilter;
/// use serde_json::json;
///
/// let any = EventFilter::any();
/// let stops = EventFilter::name("STOP");
/// let job0 = EventFilter::names(["BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED"]).data("device", json!("job0"));
/// let slow = EventFilter::any().matching(|e| e.timestamp.seconds > 0);
/// ```
#[derive(Clone, Default)]
pub struct EventFilter {
    names: Option<Vec<String>>,
    data: Vec<(String, Value)>,
    predicate: Option<Predicate>,
}

/// A caller's test on an event, shared by clones of the filter.
type Predicate = Arc<dyn Fn(&Event) -> bool + Send + Sync>;

impl fmt::Debug for EventFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventFilter")
            .field("names", &self.names)
            .field("data", &self.data)
            .field("predicate", &self.predicate.is_some())
            .finish()
    }
}

impl EventFilter {
    /// Every event.
    pub fn any() -> Self {
        Self::default()
    }

    /// Events with this name.
    pub fn name(name: impl Into<String>) -> Self {
        EventFilter { names: Some(vec![name.into()]), ..Self::default() }
    }

    /// Events with any of these names.
    pub fn names<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        EventFilter { names: Some(names.into_iter().map(Into::into).collect()), ..Self::default() }
    }

    /// Also requires `data` to hold `value` at `key`; a dotted key (`a.b`) looks into nested
    /// objects.
    pub fn data(mut self, key: impl Into<String>, value: Value) -> Self {
        self.data.push((key.into(), value));
        self
    }

    /// Also requires `predicate` to accept the event.
    pub fn matching(mut self, predicate: impl Fn(&Event) -> bool + Send + Sync + 'static) -> Self {
        self.predicate = Some(Arc::new(predicate));
        self
    }

    /// True when the event passes every condition.
    pub fn matches(&self, event: &Event) -> bool {
        if let Some(names) = &self.names {
            if !names.contains(&event.name) {
                return false;
            }
        }
        if !self.data.is_empty() {
            let data = event.data_value();
            for (key, want) in &self.data {
                let found = key.split('.').try_fold(&data, |v, k| v.get(k));
                if found != Some(want) {
                    return false;
                }
            }
        }
        self.predicate.as_ref().is_none_or(|p| p(event))
    }
}

/// Why [`Subscription::recv`] returned no event.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// The queue overflowed and this many events were dropped (the oldest first); the next
    /// call goes on with the events that were kept.
    #[error("subscriber fell behind and lost {0} events")]
    Lagged(u64),
    /// The connection is gone and every queued event has been taken.
    #[error("connection closed: {0}")]
    Closed(CloseReason),
}

/// Where the connection's close reason is published, once, for every handle and subscriber.
pub(crate) type CloseSlot = Arc<OnceLock<CloseReason>>;

/// The half of a subscription the connection task holds (as a [`Subscriber`] of the core).
pub(crate) struct Subscriber {
    filter: EventFilter,
    queue: Mutex<EventQueue<Arc<Event>>>,
    notify: Notify,
    /// The connection's close reason: no event comes after it is set.
    closed: CloseSlot,
}

impl Subscriber {
    pub(crate) fn new(filter: EventFilter, capacity: usize, closed: CloseSlot) -> Arc<Self> {
        Arc::new(Subscriber {
            filter,
            queue: Mutex::new(EventQueue::new(capacity)),
            notify: Notify::new(),
            closed,
        })
    }

    fn lock(&self) -> MutexGuard<'_, EventQueue<Arc<Event>>> {
        // A panic while holding this lock leaves the queue consistent; carry on.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the subscription: the connection has closed.
    pub(crate) fn wake(&self) {
        self.notify.notify_one();
    }
}

/// A subscriber as the connection task's core holds it.
pub(crate) struct SubHandle(pub(crate) Arc<Subscriber>);

impl qmp_proto::client::Subscriber for SubHandle {
    /// Queues the event if the filter wants it; never blocks.
    fn offer(&mut self, event: &Arc<Event>) -> Offer {
        // A subscription whose handle was dropped holds the only reference left.
        if Arc::strong_count(&self.0) == 1 {
            return Offer::Gone;
        }
        if !self.0.filter.matches(event) {
            return Offer::Declined;
        }
        if self.0.lock().push(Arc::clone(event)) {
            self.0.notify.notify_one();
        }
        Offer::Taken
    }
}

/// A stream of the events one filter selects, each queued until taken. Made by
/// [`Client::subscribe`](crate::Client::subscribe); dropping it unsubscribes.
///
/// It sees the events that arrive after the subscription was made, in the order the server
/// sent them, including those caused by any command sent after it.
pub struct Subscription {
    sub: Arc<Subscriber>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").field("filter", &self.sub.filter).finish()
    }
}

impl Subscription {
    pub(crate) fn new(sub: Arc<Subscriber>) -> Self {
        Subscription { sub }
    }

    /// The next event; `Err(Lagged(n))` once after `n` events were dropped for lack of room,
    /// `Err(Closed)` when the connection is gone and the queue is empty.
    pub async fn recv(&mut self) -> Result<Arc<Event>, RecvError> {
        loop {
            if let Some(r) = self.try_recv() {
                return r;
            }
            self.sub.notify.notified().await;
        }
    }

    /// The next event if one is queued, without waiting; `None` when there is none.
    pub fn try_recv(&mut self) -> Option<Result<Arc<Event>, RecvError>> {
        let mut queue = self.sub.lock();
        match queue.pop() {
            Some(Queued::Event(ev)) => Some(Ok(ev)),
            Some(Queued::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
            // Read under the queue's lock: the task queues every event before it publishes
            // the reason, so none is left behind.
            None => self.sub.closed.get().map(|why| Err(RecvError::Closed(why.clone()))),
        }
    }

    /// The next event within `timeout`, skipping over lost-event notices.
    pub async fn next_within(&mut self, timeout: Duration) -> Result<Arc<Event>, Error> {
        let wait = async {
            loop {
                match self.recv().await {
                    Ok(ev) => return Ok(ev),
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed(why)) => return Err(Error::Disconnected(why)),
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.map_err(|_| Error::Timeout)?
    }

    /// How many events are queued now.
    pub fn len(&self) -> usize {
        self.sub.lock().len()
    }

    /// True when no event is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
