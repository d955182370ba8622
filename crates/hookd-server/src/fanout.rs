//! The fan-out stage. `POST /msg` answers `202` once the message is stored
//! (with its fan-out pending, see [`Store::accept_message`]) and hands it here;
//! this stage writes its deliveries ([`Store::fan_out`]) and queues them. The
//! producer so waits for one row, never for one row per endpoint: a message to
//! a thousand endpoints is accepted as fast as one to a single endpoint.
//!
//! Fan-outs run side by side, so that the store's writer folds many into one
//! transaction, but only so many deliveries are being written at once
//! ([`DEFAULT_BUDGET`] unless configured, counted by the app's endpoints when the message was accepted): a burst of
//! wide fan-outs cannot make the writer's transactions long, which is what new
//! messages wait for. A fan-out the store refuses is tried a few times and then
//! left pending in the store, where the engine's sweep or the next start finds
//! it ([`crate::dispatch::Engine::fan_out_pending`]).

use std::sync::Arc;
use std::time::Duration;

use hookd_core::model::{Delivery, Message};
use hookd_queue::Queue;
use hookd_store::Store;
use tokio::sync::{mpsc, Semaphore};

/// Accepted messages waiting for their fan-out before `submit` waits too.
const BACKLOG: usize = 4_096;
/// Most deliveries being written by fan-outs at one time, unless configured
/// (`fanout_budget`). It is the knob between two S2 figures on a 2-core box:
/// 256 kept `POST /msg` p99 at 12–16 ms while 100-endpoint fan-outs ran at
/// 11–13k deliveries/s; 512 gave 43–48 ms and 15–17k/s (docs/PERFORMANCE.md).
pub const DEFAULT_BUDGET: usize = 256;
/// Tries of one fan-out before it is left to the sweep.
const TRIES: u32 = 5;

/// An accepted message and how many endpoints its app had when it was.
type Job = (Arc<Message>, usize);

/// Handle to the stage; cloning it is cheap.
#[derive(Clone)]
pub struct FanOuts {
    tx: mpsc::Sender<Job>,
}

impl FanOuts {
    /// Starts the stage on the current runtime, writing at most `budget`
    /// deliveries at one time. It ends when every handle is dropped and the
    /// fan-outs it holds are done.
    pub fn spawn(store: Arc<dyn Store>, queue: Arc<dyn Queue>, budget: usize) -> Self {
        let (tx, rx) = mpsc::channel(BACKLOG);
        tokio::spawn(run(store, queue, rx, budget.max(1)));
        Self { tx }
    }

    /// Hands over an accepted message whose app had `endpoints` endpoints
    /// (what its fan-out counts against the budget). Waits only while the
    /// stage already holds [`BACKLOG`] messages, which slows producers down to
    /// the rate at which fan-outs are written. If the stage has stopped, the
    /// message stays pending in the store for the sweep.
    pub async fn submit(&self, msg: Arc<Message>, endpoints: usize) {
        if self.tx.send((msg, endpoints)).await.is_err() {
            tracing::warn!("the fan-out stage has stopped; the message waits for the sweep");
        }
    }
}

async fn run(
    store: Arc<dyn Store>,
    queue: Arc<dyn Queue>,
    mut rx: mpsc::Receiver<Job>,
    budget: usize,
) {
    let permits = Arc::new(Semaphore::new(budget));
    while let Some((msg, endpoints)) = rx.recv().await {
        // A message wider than the whole budget waits for all of it.
        let weight = u32::try_from(endpoints.clamp(1, budget)).unwrap_or(u32::MAX);
        let Ok(permit) = permits.clone().acquire_many_owned(weight).await else {
            return;
        };
        let (store, queue) = (store.clone(), queue.clone());
        tokio::spawn(async move {
            let Some(deliveries) = fan_out(store.as_ref(), &msg).await else {
                return;
            };
            drop(permit);
            crate::push_tasks(&queue, crate::dispatch::fresh_tasks(&deliveries, &msg)).await;
        });
    }
}

/// Writes the message's fan-out, trying again after a failure; `None` if it
/// still fails, leaving the fan-out pending in the store.
async fn fan_out(store: &dyn Store, msg: &Message) -> Option<Vec<Delivery>> {
    let mut pause = Duration::from_millis(100);
    for attempt in 1..=TRIES {
        match store.fan_out(msg).await {
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
