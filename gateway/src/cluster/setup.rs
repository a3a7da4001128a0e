//! Setting up Aviary's streams, consumers and buckets when a node starts, while the NATS
//! cluster may still be settling: started together (say by one compose file), or loaded, its
//! servers can answer "no suitable peers", "peer offline" or "no stream found" (or not answer
//! in time) for a few seconds after they look healthy. Each step is tried again until it
//! works or [`PATIENCE`] runs out; only then does the node refuse to start, with the last
//! answer. Work that may fail the same way later (an adoption) is retried alike.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tracing::warn;

use super::ClusterError;

/// How long a node waits for the NATS cluster to take its setup.
pub(super) const PATIENCE: Duration = Duration::from_secs(30);
/// The pause between attempts.
const PAUSE: Duration = Duration::from_millis(250);

/// [`retrying`], with the last failure as a [`ClusterError`] that names the step.
pub(super) async fn step<T, E, F, Fut>(what: &str, step: F) -> Result<T, ClusterError>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    retrying(what, step)
        .await
        .map_err(|e| ClusterError::Stream(format!("{what}: {e}")))
}

/// Runs `step` until it succeeds, for up to [`PATIENCE`]; `what` names it in the log.
pub(super) async fn retrying<T, E, F, Fut>(what: &str, step: F) -> Result<T, E>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    retrying_for(what, PATIENCE, step).await
}

/// Runs `step` until it succeeds, for up to `patience`; `what` names it in the log.
pub(super) async fn retrying_for<T, E, F, Fut>(
    what: &str,
    patience: Duration,
    mut step: F,
) -> Result<T, E>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + patience;
    let mut warned = false;
    loop {
        match step().await {
            Ok(value) => return Ok(value),
            Err(e) if tokio::time::Instant::now() + PAUSE < deadline => {
                if !warned {
                    warn!(error = %e, "{what} failed; trying again for up to {patience:?}");
                    warned = true;
                }
                tokio::time::sleep(PAUSE).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_step_is_tried_until_it_works_then_gives_up_with_its_last_error() {
        let mut calls = 0;
        let ok: Result<u32, String> = retrying("step", || {
            calls += 1;
            let result = if calls < 3 {
                Err(format!("no {calls}"))
            } else {
                Ok(7)
            };
            async move { result }
        })
        .await;
        assert_eq!((ok, calls), (Ok(7), 3));

        let started = tokio::time::Instant::now();
        let mut calls = 0;
        let failed: Result<(), String> = retrying("step", || {
            calls += 1;
            let last = calls;
            async move { Err(format!("no {last}")) }
        })
        .await;
        assert_eq!(failed, Err(format!("no {calls}")));
        assert!(started.elapsed() <= PATIENCE && started.elapsed() >= PATIENCE - 2 * PAUSE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_that_gives_up_names_itself() {
        let failed = step("AVIARY_RETAINED", || async { Err::<(), _>("timed out") }).await;
        let message = failed.expect_err("never works").to_string();
        assert!(message.contains("AVIARY_RETAINED: timed out"), "{message}");
    }
}
