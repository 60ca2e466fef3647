//! The open pixel's writer: handlers hand each open to a bounded channel and answer at once; one task takes
//! what has queued up (up to [`BATCH`] at a time) and writes it with one multi-row upsert. Under load batches
//! grow by themselves (opens queue while the previous batch is written); when idle, an open is written as soon
//! as it arrives.
//!
//! No open is dropped while the database works: a full channel makes handlers wait (backpressure), a failed
//! write is retried, and shutdown drains the channel after the server has stopped. An open is lost only when
//! the database refuses a batch [`ATTEMPTS`] times; it is then logged and counted in `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::store::{OpenEvent, Store};

/// The most opens written in one statement.
const BATCH: usize = 1_000;
/// Opens waiting to be written before handlers wait for room.
const CAPACITY: usize = 20_000;
/// Tries per batch before its opens are given up.
const ATTEMPTS: u32 = 5;

/// The handlers' end: cheap to clone.
#[derive(Clone)]
pub struct OpenRecorder {
    sender: mpsc::Sender<OpenEvent>,
    dropped: Arc<AtomicU64>,
}

/// The writing end, run by `startup` beside the server.
pub struct OpenWriter {
    receiver: mpsc::Receiver<OpenEvent>,
    store: Store,
    dropped: Arc<AtomicU64>,
}

/// A connected recorder and writer.
pub fn open_recorder(store: Store) -> (OpenRecorder, OpenWriter) {
    let (sender, receiver) = mpsc::channel(CAPACITY);
    let dropped = Arc::new(AtomicU64::new(0));
    (OpenRecorder { sender, dropped: dropped.clone() }, OpenWriter { receiver, store, dropped })
}

impl OpenRecorder {
    /// Queues an open, waiting for room when the writer is behind.
    pub(crate) async fn record(&self, open: OpenEvent) {
        if self.sender.send(open).await.is_err() {
            // Only after shutdown, when the server has stopped taking requests.
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Opens given up on since this process started.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl OpenWriter {
    /// Writes opens until `stop` is cancelled, then writes what is still queued and returns. Cancel `stop` only
    /// once the server has stopped, so that no handler is still queueing.
    pub async fn run(mut self, stop: CancellationToken) {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            tokio::select! {
                received = self.receiver.recv_many(&mut batch, BATCH) => {
                    if received == 0 {
                        return;
                    }
                    self.write(&mut batch).await;
                }
                () = stop.cancelled() => break,
            }
        }
        self.receiver.close();
        while self.receiver.recv_many(&mut batch, BATCH).await > 0 {
            self.write(&mut batch).await;
        }
    }

    async fn write(&self, batch: &mut Vec<OpenEvent>) {
        let mut wait = Duration::from_millis(50);
        for attempt in 1..=ATTEMPTS {
            match self.store.record_opens(batch).await {
                Ok(_) => {
                    batch.clear();
                    return;
                }
                Err(e) if attempt < ATTEMPTS => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        opens = batch.len(),
                        attempt,
                        "cannot write opens; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    wait *= 4;
                }
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), opens = batch.len(), "opens lost: cannot write them")
                }
            }
        }
        self.dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
        batch.clear();
    }
}
