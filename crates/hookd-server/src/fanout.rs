//! The fan-out stage. `POST /msg` answers `202` once the message is stored
//! (with its fan-out pending, see [`Store::accept_message`]) and hands it here;
//! this stage writes its deliveries ([`Store::fan_out`]) and queues them. The
//! producer so waits for one row, never for one row per endpoint: a message to
//! a thousand endpoints is accepted as fast as one to a single endpoint.
//!
//! Fan-outs run side by side and each tells the store how many deliveries it
//! expects (the app's endpoints when the message was accepted). The store's
//! writer queues them and puts only so many deliveries' worth into each
//! transaction (`hookd_store`'s `FANOUT_ROWS`), so a burst of wide fan-outs
//! cannot make long the transactions that new messages wait behind, and the
//! writer always has the next fan-outs at hand. A fan-out the store refuses is
//! tried a few times and then left pending in the store, where the engine's
//! sweep or the next start finds it
//! ([`crate::dispatch::Engine::fan_out_pending`]).

use std::sync::Arc;
use std::time::Duration;

use hookd_core::model::{Delivery, Message};
use hookd_queue::Queue;
use hookd_store::Store;
use tokio::sync::{mpsc, Semaphore};

/// Accepted messages waiting for their fan-out before `submit` waits too.
const BACKLOG: usize = 4_096;
/// Most deliveries that fan-outs handed to the store may write before the
/// stage waits for some to finish: a bound on what waits in memory, not on
/// latency (the store's writer keeps each transaction's fan-outs small).
const IN_FLIGHT: usize = 16_384;
/// Tries of one fan-out before it is left to the sweep.
const TRIES: u32 = 5;

/// A message, its app's endpoint count, and the store's content epoch read
/// before the message was stored.
type Job = (Arc<Message>, usize, u64);

/// Handle to the stage; cloning it is cheap.
#[derive(Clone)]
pub struct FanOuts {
    tx: mpsc::Sender<Job>,
}

impl FanOuts {
    /// Starts the stage on the current runtime. It ends when every handle is
    /// dropped and the fan-outs it holds are done.
    pub fn spawn(store: Arc<dyn Store>, queue: Arc<dyn Queue>) -> Self {
        let (tx, rx) = mpsc::channel(BACKLOG);
        tokio::spawn(run(store, queue, rx));
        Self { tx }
    }

    /// Hands over an accepted message whose app had `endpoints` endpoints.
    /// Waits only while the stage already holds [`BACKLOG`] messages, which
    /// slows producers down to the rate at which fan-outs are written. If the
    /// stage has stopped, the message stays pending in the store for the sweep.
    /// `epoch`: the store's content epoch read before the message was stored.
    pub async fn submit(&self, msg: Arc<Message>, endpoints: usize, epoch: u64) {
        if self.tx.send((msg, endpoints, epoch)).await.is_err() {
            tracing::warn!("the fan-out stage has stopped; the message waits for the sweep");
        }
    }
}

async fn run(store: Arc<dyn Store>, queue: Arc<dyn Queue>, mut rx: mpsc::Receiver<Job>) {
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some((msg, endpoints, epoch)) = rx.recv().await {
        // A message wider than the whole bound waits for all of it.
        let weight = u32::try_from(endpoints.clamp(1, IN_FLIGHT)).unwrap_or(u32::MAX);
        let Ok(permit) = permits.clone().acquire_many_owned(weight).await else {
            return;
        };
        let (store, queue) = (store.clone(), queue.clone());
        tokio::spawn(async move {
            let Some(deliveries) = fan_out(store.as_ref(), &msg, endpoints).await else {
                return;
            };
            drop(permit);
            let tasks = crate::dispatch::fresh_tasks(&deliveries, &msg, queue.hint_budget(), epoch);
            crate::push_tasks(&queue, tasks).await;
        });
    }
}

/// Writes the message's fan-out, trying again after a failure; `None` if it
/// still fails, leaving the fan-out pending in the store.
async fn fan_out(store: &dyn Store, msg: &Message, endpoints: usize) -> Option<Vec<Delivery>> {
    let mut pause = Duration::from_millis(100);
    for attempt in 1..=TRIES {
        match store.fan_out(msg, endpoints).await {
            Ok(d) => return Some(d),
            Err(e) if attempt == TRIES => {
                tracing::warn!(msg_id = %msg.id, error = %e, "could not fan out the message; the sweep will");
            }
            Err(e) => {
                tracing::debug!(msg_id = %msg.id, error = %e, "fan-out failed; trying again");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
    }
    None
}
