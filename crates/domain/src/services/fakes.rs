//! Hand-written fakes shared by the services' unit tests, for ports that
//! mockall cannot mock (the [`FanOut`] port hands out boxed subscriptions).

use std::sync::Mutex;

use async_trait::async_trait;

use crate::events::Broadcast;
use crate::ports::{FanOut, NoFanOut, Subscriber, Subscription};
use crate::session::SessionId;

/// A fan-out that records what it is told, in order, so a test can assert
/// exactly which events were published and which sessions were ended.
#[derive(Debug, Default)]
pub(crate) struct RecordingFanOut {
    published: Mutex<Vec<Broadcast>>,
    ended: Mutex<Vec<SessionId>>,
}

impl RecordingFanOut {
    /// The events published so far.
    pub(crate) fn published(&self) -> Vec<Broadcast> {
        self.published.lock().unwrap().clone()
    }

    /// The sessions ended so far.
    pub(crate) fn ended(&self) -> Vec<SessionId> {
        self.ended.lock().unwrap().clone()
    }
}

#[async_trait]
impl FanOut for RecordingFanOut {
    async fn publish(&self, event: Broadcast) {
        self.published.lock().unwrap().push(event);
    }

    async fn end_session(&self, session: SessionId) {
        self.ended.lock().unwrap().push(session);
    }

    fn subscribe(&self, subscriber: Subscriber, capacity: usize) -> Box<dyn Subscription> {
        NoFanOut.subscribe(subscriber, capacity)
    }
}
