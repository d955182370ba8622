//! Group commit. SQLite has one writer at a time and, with `synchronous =
//! FULL`, every commit waits for the disk; committing each message and each
//! attempt on its own caps throughput at the disk's flush rate. The hot writes
//! (new messages with their fan-out, and attempt outcomes) are therefore sent
//! to one task that runs every write waiting at that moment in a single
//! transaction, each inside its own savepoint so that one failing write (say,
//! a duplicate `eventId`) fails alone. Callers are answered only after the
//! commit, so an acknowledgement still means durably stored.

use std::sync::Arc;

use hookd_core::model::{Attempt, Delivery, Message};
use sqlx::{Acquire, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::cache::EndpointCache;
use super::error::db;
use super::{attempts, messages};
use crate::{Result, StoreError};

/// Most writes folded into one transaction.
const MAX_GROUP: usize = 1024;

enum Op {
    CreateMessage(Message, oneshot::Sender<Result<Vec<Delivery>>>),
    RecordAttempts(Vec<(Attempt, Delivery)>, oneshot::Sender<Result<()>>),
}

#[derive(Clone)]
pub(super) struct Writer {
    tx: mpsc::UnboundedSender<Op>,
}

impl Writer {
    /// Starts the writer task on the current runtime. It ends when every
    /// `Writer` handle is dropped.
    pub(super) fn spawn(pool: SqlitePool, cache: Arc<EndpointCache>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, cache, rx));
        Self { tx }
    }

    pub(super) async fn create_message(&self, msg: &Message) -> Result<Vec<Delivery>> {
        let (reply, answer) = oneshot::channel();
        self.send(Op::CreateMessage(msg.clone(), reply))?;
        answer.await.map_err(|_| closed())?
    }

    pub(super) async fn record_attempts(&self, outcomes: &[(Attempt, Delivery)]) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.send(Op::RecordAttempts(outcomes.to_vec(), reply))?;
        answer.await.map_err(|_| closed())?
    }

    fn send(&self, op: Op) -> Result<()> {
        self.tx.send(op).map_err(|_| closed())
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("the store's writer has stopped".into())
}

/// What a finished write owes its caller, held until the commit.
enum Done {
    Message(
        oneshot::Sender<Result<Vec<Delivery>>>,
        Result<Vec<Delivery>>,
    ),
    Attempts(oneshot::Sender<Result<()>>, Result<()>),
}

impl Done {
    fn ok(&self) -> bool {
        match self {
            Done::Message(_, r) => r.is_ok(),
            Done::Attempts(_, r) => r.is_ok(),
        }
    }

    /// Answers with the write's own result, or with `failure` if the commit failed.
    fn answer(self, failure: Option<&StoreError>) {
        let fail = |e: &StoreError| match e {
            StoreError::Unavailable(inner) => StoreError::Unavailable(inner.to_string().into()),
            other => StoreError::Other(other.to_string().into()),
        };
        match self {
            Done::Message(reply, r) => {
                let _ = reply.send(match failure {
                    Some(e) if r.is_ok() => Err(fail(e)),
                    _ => r,
                });
            }
            Done::Attempts(reply, r) => {
                let _ = reply.send(match failure {
                    Some(e) if r.is_ok() => Err(fail(e)),
                    _ => r,
                });
            }
        }
    }
}

async fn run(pool: SqlitePool, cache: Arc<EndpointCache>, mut rx: mpsc::UnboundedReceiver<Op>) {
    while let Some(first) = rx.recv().await {
        let mut ops = vec![first];
        while ops.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        let mut done = Vec::with_capacity(ops.len());
        let failure = commit_group(&pool, &cache, ops, &mut done).await.err();
        for d in done {
            d.answer(failure.as_ref());
        }
    }
}

/// Runs `ops` in one transaction, pushing each one's result to `done`. An error
/// here means the transaction as a whole failed and nothing was stored.
async fn commit_group(
    pool: &SqlitePool,
    cache: &EndpointCache,
    ops: Vec<Op>,
    done: &mut Vec<Done>,
) -> Result<()> {
    let mut conn = match pool.acquire().await.map_err(db) {
        Ok(c) => c,
        Err(e) => {
            // Nothing ran: every caller learns why.
            for op in ops {
                done.push(match op {
                    Op::CreateMessage(_, reply) => Done::Message(reply, Err(clone_err(&e))),
                    Op::RecordAttempts(_, reply) => Done::Attempts(reply, Err(clone_err(&e))),
                });
            }
            return Ok(());
        }
    };
    let mut tx = conn.begin().await.map_err(db)?;
    let mut any_ok = false;
    let mut records = Vec::new();
    let mut creates = Vec::new();
    for op in ops {
        match op {
            Op::RecordAttempts(o, reply) => records.push((o, reply)),
            Op::CreateMessage(m, reply) => creates.push((m, reply)),
        }
    }
    // Each kind of write in the group goes in together, in one savepoint and a
    // few multi-row statements; only if that fails (a duplicate eventId, a
    // delivery that vanished) are its writes retried one by one, each in a
    // savepoint of its own, so that the failing one fails alone.
    let mut singles = Vec::new();
    if !records.is_empty() {
        let all: Vec<(Attempt, Delivery)> = records
            .iter()
            .flat_map(|(o, _)| o.iter().cloned())
            .collect();
        let mut sp = tx.begin().await.map_err(db)?;
        if attempts::record(&mut sp, &all).await.is_ok() {
            sp.commit().await.map_err(db)?;
            any_ok = true;
            done.extend(
                records
                    .into_iter()
                    .map(|(_, reply)| Done::Attempts(reply, Ok(()))),
            );
        } else {
            sp.rollback().await.map_err(db)?;
            singles.extend(
                records
                    .into_iter()
                    .map(|(o, reply)| Op::RecordAttempts(o, reply)),
            );
        }
    }
    if !creates.is_empty() {
        let msgs: Vec<&Message> = creates.iter().map(|(m, _)| m).collect();
        let mut sp = tx.begin().await.map_err(db)?;
        match messages::create_many(&mut sp, &msgs, cache).await {
            Ok(fanouts) => {
                sp.commit().await.map_err(db)?;
                any_ok = true;
                for ((_, reply), deliveries) in creates.into_iter().zip(fanouts) {
                    done.push(Done::Message(reply, Ok(deliveries)));
                }
            }
            Err(_) => {
                sp.rollback().await.map_err(db)?;
                singles.extend(
                    creates
                        .into_iter()
                        .map(|(m, reply)| Op::CreateMessage(m, reply)),
                );
            }
        }
    }
    for op in singles {
        let mut sp = tx.begin().await.map_err(db)?;
        let d = match op {
            Op::CreateMessage(msg, reply) => {
                let one = messages::create_many(&mut sp, &[&msg], cache)
                    .await
                    .map(|mut fanouts| fanouts.pop().unwrap_or_default());
                Done::Message(reply, one)
            }
            Op::RecordAttempts(outcomes, reply) => {
                Done::Attempts(reply, attempts::record(&mut sp, &outcomes).await)
            }
        };
        if d.ok() {
            sp.commit().await.map_err(db)?;
            any_ok = true;
        } else {
            sp.rollback().await.map_err(db)?;
        }
        done.push(d);
    }
    if any_ok {
        tx.commit().await.map_err(db)?;
    } else {
        tx.rollback().await.map_err(db)?;
    }
    Ok(())
}

fn clone_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(inner) => StoreError::Unavailable(inner.to_string().into()),
        StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
        StoreError::NotFound => StoreError::NotFound,
        StoreError::Other(inner) => StoreError::Other(inner.to_string().into()),
    }
}
