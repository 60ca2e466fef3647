//! The engine's last word before the final dot: a [`Gate`] the transport awaits once, after the relay has
//! answered DATA and just before it writes the content and the final dot (the outbox: just before it writes the
//! file). The delivery engine uses it to make the delivery's intent durable first, so that after a crash only a
//! delivery whose gate opened can have reached the relay without a recorded outcome.
//!
//! A gate that says no withholds the message: the connection is dropped before the final dot, so the relay
//! discards what it has, and the outcome is a transient failure that delivered nothing.

use std::future::Future;
use std::pin::Pin;

type Verdict = Result<(), String>;

/// Awaited at most once per message, whatever the number of connection attempts; its verdict is kept.
pub struct Gate<'a> {
    waiting: Option<Pin<Box<dyn Future<Output = Verdict> + Send + 'a>>>,
    verdict: Option<Verdict>,
}

impl<'a> Gate<'a> {
    /// A gate that lets every message through at once (test sends, notices).
    pub fn open() -> Self {
        Self { waiting: None, verdict: Some(Ok(())) }
    }

    /// A gate that opens when `verdict` resolves to `Ok`, and withholds the message on `Err(reason)`.
    pub fn new(verdict: impl Future<Output = Verdict> + Send + 'a) -> Self {
        Self { waiting: Some(Box::pin(verdict)), verdict: None }
    }

    /// Waits for the verdict (the first time only) and returns it.
    pub(crate) async fn pass(&mut self) -> Verdict {
        if let Some(waiting) = self.waiting.take() {
            self.verdict = Some(waiting.await);
        }
        self.verdict.clone().unwrap_or(Ok(()))
    }

    /// Whether the gate withheld the message (it was awaited and said no).
    pub fn withheld(&self) -> bool {
        matches!(self.verdict, Some(Err(_)))
    }
}

impl std::fmt::Debug for Gate<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").field("waiting", &self.waiting.is_some()).field("verdict", &self.verdict).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_gate_is_awaited_once_and_keeps_its_verdict() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let mut gate = Gate::new(async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err("no".to_owned())
        });
        assert!(!gate.withheld());
        assert_eq!(gate.pass().await, Err("no".to_owned()));
        assert_eq!(gate.pass().await, Err("no".to_owned()));
        assert!(gate.withheld());
        drop(gate);
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(Gate::open().pass().await, Ok(()));
    }
}
