//! Event fan-out: each subscriber has its own bounded queue, so a slow or picky one never
//! blocks replies or the others. When a queue is full the oldest event is dropped and counted,
//! and the subscriber is told how many it lost before its next event.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::Event;

/// What a subscriber made of an event it was offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Queued.
    Taken,
    /// Not wanted (its filter said no).
    Declined,
    /// The subscriber is gone (its handle was dropped): the core forgets it.
    Gone,
}

/// A subscriber as the core sees it: something an event can be offered to. The drivers
/// decide what it is (a shared queue with a waker, an entry in a table under a lock).
pub trait Subscriber {
    /// Offers `event`; never blocks.
    fn offer(&mut self, event: &Arc<Event>) -> Offer;
}

/// A bounded queue of events with its lost-event count: when full, a push drops the oldest.
///
/// ```
/// use qmp_proto::client::{EventQueue, Queued};
///
/// let mut q = EventQueue::new(2);
/// for n in 1..=3 {
///     q.push(n);
/// }
/// assert_eq!(q.pop(), Some(Queued::Lagged(1))); // 1 was dropped
/// assert_eq!(q.pop(), Some(Queued::Event(2)));
/// assert_eq!(q.pop(), Some(Queued::Event(3)));
/// assert_eq!(q.pop(), None);
/// ```
#[derive(Debug)]
pub struct EventQueue<T> {
    queue: VecDeque<T>,
    lost: u64,
    capacity: usize,
}

/// What [`EventQueue::pop`] takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Queued<T> {
    /// The next event.
    Event(T),
    /// This many events were dropped (oldest first) since the last pop; the events after them
    /// follow.
    Lagged(u64),
}

impl<T> EventQueue<T> {
    /// An empty queue holding at most `capacity` events (at least one).
    pub fn new(capacity: usize) -> Self {
        EventQueue { queue: VecDeque::new(), lost: 0, capacity: capacity.max(1) }
    }

    /// Queues `item`, dropping the oldest when full; true when the queue was empty before
    /// (a waiting consumer needs waking).
    pub fn push(&mut self, item: T) -> bool {
        if self.queue.len() >= self.capacity {
            self.queue.pop_front();
            self.lost += 1;
        }
        self.queue.push_back(item);
        self.queue.len() == 1
    }

    /// The lost-event count if events were lost since the last pop, else the next event.
    pub fn pop(&mut self) -> Option<Queued<T>> {
        if self.lost > 0 {
            return Some(Queued::Lagged(std::mem::take(&mut self.lost)));
        }
        self.queue.pop_front().map(Queued::Event)
    }

    /// How many events are queued.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when no event is queued (lost ones may still be counted).
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// True when [`pop`](Self::pop) would return something.
    pub fn has_next(&self) -> bool {
        self.lost > 0 || !self.queue.is_empty()
    }
}
