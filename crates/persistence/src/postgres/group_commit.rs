//! Group commit of appends: the appends of one room that arrive while one of
//! its transactions runs wait for it, then share the next one.
//!
//! A room's appends are serialized by the lock on its `rooms` row (that is
//! what keeps its seqs gap-free), and each transaction holds that lock until
//! its commit has been flushed to disk. One message per transaction would
//! therefore cap a room at one message per commit latency (a few hundred per
//! second here). Sharing the transaction (and its flush) among everything
//! that queued up meanwhile lifts that cap, while a lone append still goes
//! out at once, alone. Every append is still acknowledged only after the
//! commit that stored it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex};

use p_chat_domain::events::Logged;
use p_chat_domain::message::{Message, NewMessage};
use p_chat_domain::ports::StoreError;
use p_chat_domain::room::RoomId;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::messages::{append_batch, append_one};
use super::pool::PgStore;
use crate::lock;

/// The most appends one transaction takes (its `INSERT` binds 11 values per
/// message, far below PostgreSQL's limit of 65,535).
const MAX_BATCH: usize = 128;

/// What an append answers: see `MessageRepository::append`.
type Answer = Result<Option<Logged<Message>>, StoreError>;

/// One append waiting for its transaction.
struct Pending {
    message: NewMessage,
    reply: oneshot::Sender<Answer>,
}

/// The waiting appends of every room that has a committer running.
pub(super) struct GroupCommit {
    store: PgStore,
    /// A room is present while its committer runs; it holds what waits.
    queues: Mutex<HashMap<RoomId, Vec<Pending>>>,
    /// Where committers run: the runtime this was created on, if any.
    runtime: Option<Handle>,
}

impl GroupCommit {
    /// Group commit over `store`. Its committers run on the runtime it is
    /// created on (in the server, the main one, which outlives the request
    /// workers: a worker that stops first cannot take the appends of other
    /// workers' connections down with it); created outside any runtime, on
    /// the runtime of the append that starts them.
    pub(super) fn new(store: PgStore) -> Self {
        Self {
            store,
            queues: Mutex::new(HashMap::new()),
            runtime: Handle::try_current().ok(),
        }
    }

    /// Appends `message` in the next transaction of its room and answers
    /// once that transaction has committed (or failed).
    ///
    /// The transactions run in a task of their own rather than in the
    /// caller's future: a caller that is dropped (its client went away) must
    /// not strand the appends queued behind it.
    pub(super) async fn append(self: &Arc<Self>, message: NewMessage) -> Answer {
        let room = message.room_id;
        let (reply, answer) = oneshot::channel();
        let pending = Pending { message, reply };
        let start = match lock(&self.queues).entry(room) {
            Entry::Occupied(mut queue) => {
                queue.get_mut().push(pending);
                false
            }
            Entry::Vacant(slot) => {
                slot.insert(vec![pending]);
                true
            }
        };
        if start {
            let committer = Arc::clone(self).commit_queued(room);
            match &self.runtime {
                Some(runtime) => drop(runtime.spawn(committer)),
                None => drop(tokio::spawn(committer)),
            }
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Failure(
                "the room's committer stopped before answering".into(),
            ))
        })
    }

    /// Commits the room's queue, batch after batch, until it is empty.
    async fn commit_queued(self: Arc<Self>, room: RoomId) {
        let mut running = Running {
            queues: &self.queues,
            room,
            done: false,
        };
        loop {
            let batch: Vec<Pending> = {
                let mut queues = lock(&self.queues);
                let Some(queue) = queues.get_mut(&room).filter(|queue| !queue.is_empty()) else {
                    queues.remove(&room);
                    running.done = true;
                    return;
                };
                let size = queue.len().min(MAX_BATCH);
                queue.drain(..size).collect()
            };
            self.commit(batch).await;
        }
    }

    /// Stores one batch and answers each of its appends.
    async fn commit(&self, mut batch: Vec<Pending>) {
        crate::metrics::batch(batch.len());
        if batch.len() == 1 {
            if let Some(Pending { message, reply }) = batch.pop() {
                let _ = reply.send(append_one(&self.store, &message).await);
            }
            return;
        }
        let messages: Vec<&NewMessage> = batch.iter().map(|pending| &pending.message).collect();
        match append_batch(&self.store, &messages).await {
            Ok(answers) => {
                for (pending, answer) in batch.into_iter().zip(answers) {
                    let _ = pending.reply.send(Ok(answer));
                }
            }
            Err(StoreError::Unavailable(reason)) => {
                for pending in batch {
                    let _ = pending
                        .reply
                        .send(Err(StoreError::Unavailable(reason.clone())));
                }
            }
            // A constraint refused the batch as a whole (a message id used
            // twice, say): one transaction each tells whose append it was.
            Err(_) => {
                for pending in batch {
                    let answer = append_one(&self.store, &pending.message).await;
                    let _ = pending.reply.send(answer);
                }
            }
        }
    }
}

/// Marks a room's committer as running; if it ends other than by finding
/// the queue empty (a panic, the runtime shutting down), dropping this
/// removes the queue, so that its appends fail instead of waiting forever
/// and the next append starts a new committer.
struct Running<'a> {
    queues: &'a Mutex<HashMap<RoomId, Vec<Pending>>>,
    room: RoomId,
    done: bool,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if !self.done {
            lock(self.queues).remove(&self.room);
        }
    }
}
