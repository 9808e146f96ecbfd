//! Event subscriptions: each subscriber has its own bounded queue and filter, so a slow or
//! picky subscriber never blocks replies or other subscribers. When a queue is full the oldest
//! event is dropped and the subscriber is told how many it lost.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_core::Stream;

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

/// A subscriber's queue, and the waker of a task polling it as a [`Stream`].
struct Queue {
    events: EventQueue<Arc<Event>>,
    waker: Option<Waker>,
}

/// The half of a subscription the connection task holds (as a [`Subscriber`] of the core).
pub(crate) struct Subscriber {
    filter: EventFilter,
    queue: Mutex<Queue>,
    notify: Notify,
    /// The connection's close reason: no event comes after it is set.
    closed: CloseSlot,
}

impl Subscriber {
    pub(crate) fn new(filter: EventFilter, capacity: usize, closed: CloseSlot) -> Arc<Self> {
        Arc::new(Subscriber {
            filter,
            queue: Mutex::new(Queue { events: EventQueue::new(capacity), waker: None }),
            notify: Notify::new(),
            closed,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock leaves the queue consistent; carry on.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the subscription: the connection has closed.
    pub(crate) fn wake(&self) {
        let waker = self.lock().waker.take();
        self.notify.notify_one();
        if let Some(w) = waker {
            w.wake();
        }
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
        let mut queue = self.0.lock();
        if queue.events.push(Arc::clone(event)) {
            // Woken only when the queue was empty: a burst costs one wake-up.
            let waker = queue.waker.take();
            drop(queue);
            self.0.notify.notify_one();
            if let Some(w) = waker {
                w.wake();
            }
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
    /// The stream has yielded the end ([`RecvError::Closed`]); it yields nothing more.
    ended: bool,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").field("filter", &self.sub.filter).finish()
    }
}

impl Subscription {
    pub(crate) fn new(sub: Arc<Subscriber>) -> Self {
        Subscription { sub, ended: false }
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
        match queue.events.pop() {
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
        self.sub.lock().events.len()
    }

    /// True when no event is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The events as a [`Stream`], to combine with others (`select`, `merge`, `take_while`...):
/// each item is what [`Subscription::recv`] returns, lost-event notices included; after the
/// connection closes the stream yields `Err(Closed(reason))` once, then ends.
///
/// ```no_run
/// # async fn demo(client: qmp::Client) {
/// use std::future::poll_fn;
/// use std::pin::Pin;
/// use qmp::Stream;
///
/// let mut events = client.events();
/// while let Some(item) = poll_fn(|cx| Pin::new(&mut events).poll_next(cx)).await {
///     match item {
///         Ok(event) => println!("{}", event.name),
///         Err(qmp::RecvError::Lagged(n)) => println!("lost {n}"),
///         Err(e) => println!("{e}"),
///     }
/// }
/// # }
/// ```
impl Stream for Subscription {
    type Item = Result<Arc<Event>, RecvError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        let mut queue = this.sub.lock();
        let item = match queue.events.pop() {
            Some(Queued::Event(ev)) => Ok(ev),
            Some(Queued::Lagged(n)) => Err(RecvError::Lagged(n)),
            // Under the queue's lock, as in try_recv.
            None => match this.sub.closed.get() {
                Some(why) => {
                    this.ended = true;
                    Err(RecvError::Closed(why.clone()))
                }
                None => {
                    if !queue.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        queue.waker = Some(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
            },
        };
        Poll::Ready(Some(item))
    }
}
