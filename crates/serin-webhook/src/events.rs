//! Event webhooks: fire and forget through a bounded queue, so they never block an analysis.

use std::sync::Arc;

use tokio::{sync::mpsc, task::JoinHandle};

use crate::{HookCall, WebhookClient};

/// The sending side of the event queue.
#[derive(Debug, Clone)]
pub struct EventSink {
    queue: mpsc::Sender<HookCall>,
}

impl EventSink {
    /// Starts the sender task with a queue of `capacity` calls.
    pub fn spawn(client: Arc<dyn WebhookClient>, capacity: usize) -> (EventSink, JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<HookCall>(capacity.max(1));
        let task = tokio::spawn(async move {
            while let Some(call) = rx.recv().await {
                let outcome = client.call(&call).await;
                if !outcome.passed() {
                    tracing::warn!(hook = %call.name, url = %call.url, outcome = %outcome.describe(), "event webhook failed");
                }
            }
        });
        (EventSink { queue: tx }, task)
    }

    /// Queues a call; returns false (and logs) when the queue is full or closed.
    pub fn send(&self, call: HookCall) -> bool {
        match self.queue.try_send(call) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "event webhook dropped: queue full or closed");
                false
            }
        }
    }
}
