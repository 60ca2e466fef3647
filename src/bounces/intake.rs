//! The group commit of incoming reports: every listener session hands its prepared report to one writer task
//! (the IMAP poller, one message at a time, applies its own directly), which stores and applies whatever has
//! arrived in one transaction and then answers each. A session says 250 only after that commit, so a report
//! the sender was told we have is durable, and many sessions share one disk flush.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::Pipeline;
use crate::clock::Clock;
use crate::store::{AppliedReport, NewReport, Store};

/// Reports committed together at most.
const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<AppliedReport, String>>;

/// A handle to the writer task; cloning it is cheap.
#[derive(Clone)]
pub struct Intake {
    sender: mpsc::Sender<(NewReport, Reply)>,
}

impl Intake {
    /// Starts the writer on the runtime. It stops when every handle is dropped, after answering what is queued.
    pub fn start(store: Store, pipeline: Arc<Pipeline>, clock: Clock) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(4 * MAX_BATCH);
        let task = tokio::spawn(write_loop(store, pipeline, clock, receiver));
        (Self { sender }, task)
    }

    /// Stores and applies one report; returns once it is committed, or why it could not be (the sender should
    /// then try again later).
    pub async fn submit(&self, report: NewReport) -> Result<AppliedReport, String> {
        let (reply, answer) = oneshot::channel();
        self.sender.send((report, reply)).await.map_err(|_| "the report writer has stopped".to_owned())?;
        answer.await.map_err(|_| "the report writer has stopped".to_owned())?
    }
}

async fn write_loop(
    store: Store,
    pipeline: Arc<Pipeline>,
    clock: Clock,
    mut receiver: mpsc::Receiver<(NewReport, Reply)>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (reports, replies): (Vec<NewReport>, Vec<Reply>) = batch.drain(..).unzip();
        match pipeline.apply(&store, &reports, clock.now()).await {
            Ok(applied) => {
                for (reply, result) in replies.into_iter().zip(applied) {
                    let _ = reply.send(Ok(result));
                }
            }
            Err(e) => {
                let reason = format!("{e:#}");
                tracing::error!(error = %reason, reports = reports.len(), "cannot store reports; senders will retry");
                for reply in replies {
                    let _ = reply.send(Err(reason.clone()));
                }
            }
        }
    }
}
