//! The last check before a message goes out, shared by the connections of a batch.
//!
//! Each connection asks, just before it sends, whether its subscriber is still active and not suppressed. The
//! asks are answered by one query for every ask waiting at that moment: the first connection to ask runs the
//! query; asks made while it runs wait for the next one. A query answers only asks made before it started, so
//! every answer sees every unsubscribe or suppression committed before its connection asked: the guarantee of
//! one query per message, at the cost of one round trip to the database per group of asks (on SQLite a round
//! trip costs about 90 µs of CPU, most of it sqlx's hand-off to its worker thread).

use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::store::{EligibilityQuestion, Store};

type Answer = Result<bool, String>;

#[derive(Default)]
pub(super) struct EligibilityCheck {
    /// Asks not yet taken by a query.
    waiting: Mutex<Vec<(EligibilityQuestion, oneshot::Sender<Answer>)>>,
    /// Held by the connection running a query.
    running: tokio::sync::Mutex<()>,
}

impl EligibilityCheck {
    /// Whether the subscriber may still get the message, asked now.
    pub(super) async fn ask(&self, store: &Store, question: EligibilityQuestion) -> Answer {
        let (tell, mut answer) = oneshot::channel();
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).push((question, tell));
        loop {
            {
                // Whoever holds this runs one query for everything waiting, this ask included unless an earlier
                // query (one that started after it was made) took it.
                let _running = self.running.lock().await;
                if let Ok(result) = answer.try_recv() {
                    return result;
                }
                let asks = std::mem::take(&mut *self.waiting.lock().unwrap_or_else(|p| p.into_inner()));
                if !asks.is_empty() {
                    let questions: Vec<EligibilityQuestion> = asks.iter().map(|(q, _)| q.clone()).collect();
                    match store.still_eligible_many(&questions).await {
                        Ok(answers) => {
                            for ((_, tell), eligible) in asks.into_iter().zip(answers) {
                                let _ = tell.send(Ok(eligible));
                            }
                        }
                        Err(e) => {
                            let why = format!("{e:#}");
                            for (_, tell) in asks {
                                let _ = tell.send(Err(why.clone()));
                            }
                        }
                    }
                }
            }
            match answer.try_recv() {
                Ok(result) => return result,
                Err(oneshot::error::TryRecvError::Empty) => continue,
                Err(oneshot::error::TryRecvError::Closed) => return Err("the check was dropped".to_owned()),
            }
        }
    }
}
