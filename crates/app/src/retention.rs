//! Retention of room events (`EVENT_RETENTION_DAYS`): a background task
//! prunes every room's oldest events once an hour. Messages stay in
//! history; a client resuming from a pruned position is told
//! `resync_required` and reloads the room.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use p_chat_domain::services::Messaging;
use tokio::sync::watch;

/// How often events past their retention are pruned.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// Prunes events older than `retention` now and every [`SWEEP_INTERVAL`],
/// until shutdown. A failed sweep is logged and retried at the next one.
pub fn spawn(messaging: Messaging, retention: TimeDelta, mut shutdown: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|stopping| *stopping) => return,
                _ = tick.tick() => {}
            }
            match messaging.prune_events(Utc::now() - retention).await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "pruned room events past their retention"),
                Err(error) => {
                    tracing::warn!(%error, "pruning room events failed; retrying at the next sweep");
                }
            }
        }
    });
}
