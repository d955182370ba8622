//! The in-process queue used by single-node `hookd serve`. Tasks live in a
//! min-heap ordered by due time; a `Notify` wakes a waiting worker when a task is
//! pushed, so due work is picked up at once. Durability comes from the store:
//! on start the server re-pushes every pending delivery.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::Notify;

use crate::{HintBudget, Lease, Queue, Result, Task};

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    due_ms: i64,
    seq: u64,
    #[allow(clippy::struct_field_names)]
    task: TaskOrd,
}

/// `Task` wrapped so the heap can order entries by (due, seq) alone.
#[derive(Debug)]
struct TaskOrd(Task);

impl PartialEq for TaskOrd {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for TaskOrd {}
impl PartialOrd for TaskOrd {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for TaskOrd {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

#[derive(Default)]
struct State {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

pub struct EmbeddedQueue {
    state: Mutex<State>,
    notify: Notify,
    hints: HintBudget,
}

impl Default for EmbeddedQueue {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            notify: Notify::default(),
            hints: HintBudget::new(HintBudget::DEFAULT_CAP),
        }
    }
}

impl EmbeddedQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes up to `max` due tasks, or says how long until the next one is due.
    fn take_due(&self, max: usize) -> (Vec<Lease>, Option<Duration>) {
        let now = Utc::now().timestamp_millis();
        let mut st = self.state.lock().expect("queue lock poisoned");
        let mut out = Vec::new();
        while out.len() < max {
            match st.heap.peek() {
                Some(Reverse(e)) if e.due_ms <= now => {
                    let Reverse(e) = st.heap.pop().expect("peeked");
                    out.push(Lease {
                        receipt: e.seq.to_string(),
                        task: e.task.0,
                    });
                }
                _ => break,
            }
        }
        let next = st
            .heap
            .peek()
            .map(|Reverse(e)| Duration::from_millis((e.due_ms - now).max(0) as u64));
        (out, next)
    }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    async fn push(&self, tasks: Vec<Task>) -> Result<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        {
            let mut st = self.state.lock().expect("queue lock poisoned");
            for task in tasks {
                st.seq += 1;
                let seq = st.seq;
                st.heap.push(Reverse(Entry {
                    due_ms: task.due.timestamp_millis(),
                    seq,
                    task: TaskOrd(task),
                }));
            }
        }
        self.notify.notify_waiters();
        self.notify.notify_one();
        Ok(())
    }

    async fn pop(&self, max: usize, wait: Duration) -> Result<Vec<Lease>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register interest before looking, so a push in between is not missed.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (leases, next_due) = self.take_due(max);
            if !leases.is_empty() {
                return Ok(leases);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let sleep_until = match next_due {
                Some(d) => (now + d).min(deadline),
                None => deadline,
            };
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(sleep_until) => {}
            }
        }
    }

    async fn ack(&self, _leases: &[Lease]) -> Result<()> {
        // Handed-out tasks are already gone from the heap; the store row is the
        // record of the outcome, and a crash re-pushes whatever is still pending.
        Ok(())
    }

    async fn len(&self) -> Result<usize> {
        Ok(self.state.lock().expect("queue lock poisoned").heap.len())
    }

    fn hint_budget(&self) -> Option<&HintBudget> {
        Some(&self.hints)
    }
}
