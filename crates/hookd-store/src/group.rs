//! Group commit, shared by the backends. Every commit waits for the disk
//! (SQLite with `synchronous = FULL`, PostgreSQL's WAL flush), and a commit
//! per message and per attempt caps throughput at the disk's flush rate and,
//! on PostgreSQL, ties up a pooled connection per writer. The hot writes (new
//! messages, their fan-outs, and attempt outcomes) therefore go to one task
//! that runs the writes waiting at that moment in as few transactions as it
//! can: the new messages in one, so a 202 never waits behind other work, then
//! every attempt outcome with fan-outs of at most `FANOUT_ROWS` deliveries in
//! another (further fan-outs wait for the next round). Once new messages have
//! stopped coming, the bounds are the larger `FANOUT_ROWS_QUIET` and
//! `MAX_GROUP_QUIET`.
//!
//! A group first goes in as a few multi-row statements in one transaction.
//! Only if that fails (a duplicate `eventId`, a delivery that vanished, or at
//! the commit a foreign key that SQLite defers there) is it rolled back and
//! the group written again: each kind of write in a transaction of its own,
//! and a kind that fails once more one write at a time, each in a transaction
//! of its own, so that the failing one fails alone. (Savepoints cannot find a
//! write that breaks a deferred foreign key: only the commit checks it.)
//! Callers are answered only after their write's commit, so an
//! acknowledgement still means durably stored.

use async_trait::async_trait;
use hookd_core::model::{Attempt, Delivery, Message};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Connection, Database, Pool};
use tokio::sync::{mpsc, oneshot};

use crate::{Accepted, Result, StoreError};

/// Most writes folded into one transaction while new messages arrive: each
/// of them waits for at most one such group ahead of its own commit.
const MAX_GROUP: usize = 1024;
/// The same bound once no new message has arrived for [`QUIET`]. Attempt
/// outcomes then come only from the workers, and each transaction's fixed
/// cost (the commit's flush, the index pages written again) is shared by more
/// of them: S2's delivery phase ran 5% faster with 2048–16384 than with 1024
/// (docs/PERFORMANCE.md, twelfth machine), and `POST /msg` p99 twice as long
/// when that bound also held while messages arrived.
const MAX_GROUP_QUIET: usize = 4096;
/// Most deliveries, as expected by the fan-outs' callers, that one group's
/// fan-outs write (a single wider fan-out goes alone). It trades S2's two
/// figures against each other on a 2-core box: 128 kept `POST /msg` p99 at
/// 12–18 ms with 100-endpoint fan-outs running at 12.5–13.2k deliveries/s;
/// 256 gave 19–43 ms and 15.5–16.9k/s (docs/PERFORMANCE.md).
const FANOUT_ROWS: usize = 128;
/// The same bound once no new message has arrived for [`QUIET`]: no producer
/// is then waiting behind the group, and a larger one writes each index page
/// that a fan-out touches (one per endpoint and index) once for many messages
/// instead of once for every one. A message arriving just as such a group
/// begins waits for it (tens of milliseconds on a small machine).
const FANOUT_ROWS_QUIET: usize = 2048;
/// How long without a new message before the writer takes the larger bound.
const QUIET: Duration = Duration::from_millis(20);
const _: () = assert!(FANOUT_ROWS_QUIET > FANOUT_ROWS);
const _: () = assert!(MAX_GROUP_QUIET > MAX_GROUP);

/// The connection type of a backend's database.
pub(crate) type Conn<B> = <<B as GroupWrites>::Db as Database>::Connection;

/// How one backend performs the grouped writes inside the writer's transaction.
#[async_trait]
pub(crate) trait GroupWrites: Send + Sync + 'static {
    type Db: Database;

    /// Inserts the messages, answering for each the deliveries written with
    /// it when its app has at most [`crate::INLINE_FANOUT`] endpoints, or that
    /// its fan-out was left pending; any failing message fails the whole call.
    async fn accept_messages(
        &self,
        conn: &mut Conn<Self>,
        msgs: &[&Message],
    ) -> Result<Vec<Accepted>>;

    /// Claims the pending fan-outs of the messages and inserts their
    /// deliveries, answering each message's new deliveries in order: none for
    /// a message already fanned out (or gone).
    async fn fan_out(&self, conn: &mut Conn<Self>, msgs: &[&Message])
        -> Result<Vec<Vec<Delivery>>>;

    /// Files the attempts and their deliveries' new state; a missing delivery
    /// is `NotFound`.
    async fn record_attempts(
        &self,
        conn: &mut Conn<Self>,
        outcomes: &[(Attempt, Delivery)],
    ) -> Result<()>;

    /// Writes one group (attempt outcomes, new messages, fan-outs) in one
    /// transaction, begun and ended here. By default a statement or a few at
    /// a time ([`in_transaction`]); a backend may send it in fewer round trips.
    async fn write_group(
        &self,
        conn: &mut Conn<Self>,
        outcomes: &[(Attempt, Delivery)],
        accepts: &[&Message],
        fanouts: &[&Message],
    ) -> Written
    where
        Self: Sized,
    {
        in_transaction(self, conn, outcomes, accepts, fanouts).await
    }

    /// The backend's mapping of driver errors.
    fn error(e: sqlx::Error) -> StoreError;

    /// Called after each group's transaction has ended.
    fn committed(&self) {}

    /// Whether the writer may keep its connection from one group to the
    /// next; not when it is the only connection the reads have too.
    fn keeps_connection(&self) -> bool {
        true
    }
}

type Reply<T> = oneshot::Sender<Result<T>>;
/// Attempt outcomes with their deliveries' new state.
type Outcomes = Vec<(Attempt, Delivery)>;

enum Op {
    Accept(Message, Reply<Accepted>),
    /// A message to fan out, with about how many deliveries it will write.
    FanOut(Message, usize, Reply<Vec<Delivery>>),
    RecordAttempts(Outcomes, Reply<()>),
}

#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::UnboundedSender<Op>,
}

impl Writer {
    /// Starts the writer task on the current runtime. It ends when every
    /// `Writer` handle is dropped.
    pub(crate) fn spawn<B: GroupWrites>(pool: Pool<B::Db>, backend: B) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, backend, rx));
        Self { tx }
    }

    pub(crate) async fn accept_message(&self, msg: &Message) -> Result<Accepted> {
        let (reply, answer) = oneshot::channel();
        self.send(Op::Accept(msg.clone(), reply))?;
        answer.await.map_err(|_| closed())?
    }

    pub(crate) async fn fan_out(&self, msg: &Message, endpoints: usize) -> Result<Vec<Delivery>> {
        let (reply, answer) = oneshot::channel();
        self.send(Op::FanOut(msg.clone(), endpoints, reply))?;
        answer.await.map_err(|_| closed())?
    }

    pub(crate) async fn record_attempts(&self, outcomes: &[(Attempt, Delivery)]) -> Result<()> {
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
    Unit(Reply<()>, Result<()>),
    Accept(Reply<Accepted>, Result<Accepted>),
    FanOut(Reply<Vec<Delivery>>, Result<Vec<Delivery>>),
}

impl Done {
    /// Answers with the write's own result.
    fn answer(self) {
        match self {
            Done::Unit(reply, r) => {
                let _ = reply.send(r);
            }
            Done::Accept(reply, r) => {
                let _ = reply.send(r);
            }
            Done::FanOut(reply, r) => {
                let _ = reply.send(r);
            }
        }
    }

    /// Answers an op that never ran.
    fn failed(op: Op, e: &StoreError) -> Self {
        match op {
            Op::Accept(_, reply) => Done::Accept(reply, Err(clone_err(e))),
            Op::RecordAttempts(_, reply) => Done::Unit(reply, Err(clone_err(e))),
            Op::FanOut(_, _, reply) => Done::FanOut(reply, Err(clone_err(e))),
        }
    }
}

async fn run<B: GroupWrites>(pool: Pool<B::Db>, backend: B, mut rx: mpsc::UnboundedReceiver<Op>) {
    // Fan-outs not yet written, oldest first, with their expected sizes.
    let mut fanouts: VecDeque<(usize, Op)> = VecDeque::new();
    let mut last_accept: Option<Instant> = None;
    // The connection is kept from one group to the next while writes keep
    // coming: sqlx tests a connection each time it goes back to the pool (a
    // round trip to the database, or to SQLite's worker thread), and the next
    // group's acquire waited for that. It goes back once the writer is idle,
    // so closing the pool never waits for this task, and after every group
    // when the reads have no other connection (an in-memory SQLite database).
    let mut held: Option<PoolConnection<B::Db>> = None;
    loop {
        let (mut accepts, mut rest) = (Vec::new(), Vec::new());
        if fanouts.is_empty() {
            let op = match rx.try_recv() {
                Ok(op) => Some(op),
                Err(_) => {
                    held = None;
                    rx.recv().await
                }
            };
            match op {
                Some(op) => sort_op(op, &mut accepts, &mut rest, &mut fanouts),
                None => return,
            }
        }
        let max_group = bounds(last_accept, Instant::now()).writes;
        while accepts.len() + rest.len() < max_group {
            match rx.try_recv() {
                Ok(op) => sort_op(op, &mut accepts, &mut rest, &mut fanouts),
                Err(_) => break,
            }
        }
        // New messages go first, in a transaction of their own: a producer
        // waiting for its 202 waits for one small commit, and for at most one
        // group ahead of it, which holds the attempt outcomes waiting and
        // fan-outs of at most FANOUT_ROWS deliveries (the rest wait for the
        // next group), so that group stays short however many wide fan-outs
        // are queued.
        let now = Instant::now();
        if !accepts.is_empty() {
            last_accept = Some(now);
        }
        commit(&pool, &backend, &mut held, accepts).await;
        rest.extend(take_within(
            &mut fanouts,
            bounds(last_accept, now).fanout_rows,
        ));
        commit(&pool, &backend, &mut held, rest).await;
        if !backend.keeps_connection() {
            held = None;
        }
    }
}

/// How large one group may be.
#[derive(Debug, PartialEq, Eq)]
struct Bounds {
    /// Writes taken from the channel.
    writes: usize,
    /// Deliveries its fan-outs write.
    fanout_rows: usize,
}

/// The bounds on a group when the last new message arrived at `last_accept`
/// (if ever): the small ones while producers may be waiting behind it.
fn bounds(last_accept: Option<Instant>, now: Instant) -> Bounds {
    match last_accept {
        Some(at) if now.duration_since(at) < QUIET => Bounds {
            writes: MAX_GROUP,
            fanout_rows: FANOUT_ROWS,
        },
        _ => Bounds {
            writes: MAX_GROUP_QUIET,
            fanout_rows: FANOUT_ROWS_QUIET,
        },
    }
}

/// Takes items from the front of `queue` while their weights add up to at
/// most `limit`, and always at least one.
fn take_within<T>(queue: &mut VecDeque<(usize, T)>, limit: usize) -> Vec<T> {
    let (mut taken, mut total) = (Vec::new(), 0);
    while let Some((w, _)) = queue.front() {
        if !taken.is_empty() && total + w > limit {
            break;
        }
        total += w;
        if let Some((_, item)) = queue.pop_front() {
            taken.push(item);
        }
    }
    taken
}

fn sort_op(op: Op, accepts: &mut Vec<Op>, rest: &mut Vec<Op>, fanouts: &mut VecDeque<(usize, Op)>) {
    match op {
        Op::Accept(..) => accepts.push(op),
        Op::FanOut(_, w, _) => fanouts.push_back((w.max(1), op)),
        Op::RecordAttempts(..) => rest.push(op),
    }
}

/// Commits `ops` (if any) as one group on the `held` connection (taking one
/// from the pool if none is held) and answers them.
async fn commit<B: GroupWrites>(
    pool: &Pool<B::Db>,
    backend: &B,
    held: &mut Option<PoolConnection<B::Db>>,
    ops: Vec<Op>,
) {
    if ops.is_empty() {
        return;
    }
    let mut done = Vec::with_capacity(ops.len());
    if let Err(ConnectionLost) = commit_group(pool, backend, held, ops, &mut done).await {
        // The connection may be broken: the next group takes a fresh one.
        *held = None;
    }
    for d in done {
        d.answer();
    }
    backend.committed();
}

/// [`commit_group`] stopped short: the connection failed. The answers given
/// stand (what was committed by then stays committed); every other write is
/// answered with the connection's failure.
struct ConnectionLost;

/// A group's ops, sorted by kind.
#[derive(Default)]
struct Kinds {
    records: Vec<(Outcomes, Reply<()>)>,
    accepts: Vec<(Message, Reply<Accepted>)>,
    fanouts: Vec<(Message, Reply<Vec<Delivery>>)>,
}

impl Kinds {
    fn new(ops: Vec<Op>) -> Self {
        let mut k = Self::default();
        for op in ops {
            match op {
                Op::RecordAttempts(o, reply) => k.records.push((o, reply)),
                Op::Accept(m, reply) => k.accepts.push((m, reply)),
                Op::FanOut(m, _, reply) => k.fanouts.push((m, reply)),
            }
        }
        k
    }

    fn len(&self) -> usize {
        self.records.len() + self.accepts.len() + self.fanouts.len()
    }

    /// Every op answered with what the group's one transaction wrote.
    fn answer(self, accepted: Vec<Accepted>, fanouts: Vec<Vec<Delivery>>, done: &mut Vec<Done>) {
        done.extend(self.records.into_iter().map(|(_, r)| Done::Unit(r, Ok(()))));
        for ((_, reply), a) in self.accepts.into_iter().zip(accepted) {
            done.push(Done::Accept(reply, Ok(a)));
        }
        for ((_, reply), deliveries) in self.fanouts.into_iter().zip(fanouts) {
            done.push(Done::FanOut(reply, Ok(deliveries)));
        }
    }

    /// Every op answered with `e`.
    fn fail_all(self, e: &StoreError, done: &mut Vec<Done>) {
        for (_, reply) in self.records {
            done.push(Done::Unit(reply, Err(clone_err(e))));
        }
        for (_, reply) in self.accepts {
            done.push(Done::Accept(reply, Err(clone_err(e))));
        }
        for (_, reply) in self.fanouts {
            done.push(Done::FanOut(reply, Err(clone_err(e))));
        }
    }
}

fn messages<T>(list: &[(Message, T)]) -> Vec<&Message> {
    list.iter().map(|(m, _)| m).collect()
}

/// Runs `ops` in one transaction, pushing each one's result to `done`. An error
/// here means the transaction as a whole failed and nothing was stored; ops
/// not in `done` then are answered by their dropped reply channel.
async fn commit_group<B: GroupWrites>(
    pool: &Pool<B::Db>,
    backend: &B,
    held: &mut Option<PoolConnection<B::Db>>,
    ops: Vec<Op>,
    done: &mut Vec<Done>,
) -> std::result::Result<(), ConnectionLost> {
    let conn = match held {
        Some(c) => c,
        None => match pool.acquire().await.map_err(B::error) {
            Ok(c) => held.insert(c),
            Err(e) => {
                // Nothing ran: every caller learns why.
                done.extend(ops.into_iter().map(|op| Done::failed(op, &e)));
                return Ok(());
            }
        },
    };
    let mut k = Kinds::new(ops);
    // Moved into one list, not copied; handed back to their ops if the group
    // has to go one by one.
    let counts: Vec<usize> = k.records.iter().map(|(o, _)| o.len()).collect();
    let all: Vec<(Attempt, Delivery)> = k
        .records
        .iter_mut()
        .flat_map(|(o, _)| std::mem::take(o))
        .collect();

    // The usual case: every write succeeds, so the group runs as plain
    // statements in the one transaction, with no savepoint round trips.
    let written = backend
        .write_group(conn, &all, &messages(&k.accepts), &messages(&k.fanouts))
        .await;
    let first_err = match written {
        Written::Committed(accepted, fanouts) => {
            k.answer(accepted, fanouts, done);
            return Ok(());
        }
        Written::Refused(e) => e,
        Written::Failed(e) => {
            // Every one's answer (see `commit`), and the connection goes.
            k.fail_all(&e, done);
            return Err(ConnectionLost);
        }
    };
    if k.len() == 1 {
        // Alone in its transaction: its failure is its own answer.
        if let Some((_, reply)) = k.records.pop() {
            done.push(Done::Unit(reply, Err(first_err)));
        } else if let Some((_, reply)) = k.accepts.pop() {
            done.push(Done::Accept(reply, Err(first_err)));
        } else if let Some((_, reply)) = k.fanouts.pop() {
            done.push(Done::FanOut(reply, Err(first_err)));
        }
        return Ok(());
    }

    // Something in the group failed: find it without failing the rest. Each
    // kind goes in a transaction of its own, and a kind that fails there
    // (in a statement or at its commit) goes one op at a time, each in a
    // transaction of its own, so that the failing one fails alone. This costs
    // a commit per op of the failing kind, but only for a group that failed.
    // On a connection failure the ops not yet answered learn why.
    let mut singles = Vec::new();
    if !k.records.is_empty() {
        match own_tx(backend, conn, Part::Records(&all)).await {
            Ok(Ok(_)) => {
                let records = std::mem::take(&mut k.records);
                done.extend(records.into_iter().map(|(_, r)| Done::Unit(r, Ok(()))));
            }
            Ok(Err(_)) => {
                let mut rest = all.into_iter();
                let records = std::mem::take(&mut k.records);
                singles.extend(records.into_iter().zip(counts).map(|((_, reply), n)| {
                    Op::RecordAttempts(rest.by_ref().take(n).collect(), reply)
                }));
            }
            Err(e) => return Err(connection_lost(&e, k, singles, done)),
        }
    }
    if !k.accepts.is_empty() {
        match own_tx(backend, conn, Part::Accepts(&messages(&k.accepts))).await {
            Ok(Ok(Wrote::Accepts(accepted))) => {
                let accepts = std::mem::take(&mut k.accepts);
                for ((_, reply), a) in accepts.into_iter().zip(accepted) {
                    done.push(Done::Accept(reply, Ok(a)));
                }
            }
            Ok(_) => {
                let accepts = std::mem::take(&mut k.accepts);
                singles.extend(accepts.into_iter().map(|(m, r)| Op::Accept(m, r)));
            }
            Err(e) => return Err(connection_lost(&e, k, singles, done)),
        }
    }
    if !k.fanouts.is_empty() {
        match own_tx(backend, conn, Part::FanOuts(&messages(&k.fanouts))).await {
            Ok(Ok(Wrote::FanOuts(fanouts))) => {
                let fanned = std::mem::take(&mut k.fanouts);
                for ((_, reply), deliveries) in fanned.into_iter().zip(fanouts) {
                    done.push(Done::FanOut(reply, Ok(deliveries)));
                }
            }
            Ok(_) => {
                let fanned = std::mem::take(&mut k.fanouts);
                singles.extend(fanned.into_iter().map(|(m, r)| Op::FanOut(m, 0, r)));
            }
            Err(e) => return Err(connection_lost(&e, k, singles, done)),
        }
    }
    let mut singles = singles.into_iter();
    while let Some(op) = singles.next() {
        match run_one(backend, conn, op).await {
            Ok(d) => done.push(d),
            Err((e, d)) => {
                done.push(d);
                return Err(connection_lost(
                    &e,
                    Kinds::default(),
                    singles.collect(),
                    done,
                ));
            }
        }
    }
    Ok(())
}

/// Answers every op not yet answered, in `k` and in `singles`, with `e`, the
/// connection's failure; what was committed before stays answered as it was.
fn connection_lost(
    e: &StoreError,
    k: Kinds,
    singles: Vec<Op>,
    done: &mut Vec<Done>,
) -> ConnectionLost {
    k.fail_all(e, done);
    done.extend(singles.into_iter().map(|op| Done::failed(op, e)));
    ConnectionLost
}

/// One kind of the group's writes, or one op's.
enum Part<'a> {
    Records(&'a [(Attempt, Delivery)]),
    Accepts(&'a [&'a Message]),
    FanOuts(&'a [&'a Message]),
}

/// What a [`Part`] answers.
enum Wrote {
    Records,
    Accepts(Vec<Accepted>),
    FanOuts(Vec<Vec<Delivery>>),
}

/// Runs `part` in a transaction of its own. The outer error is the
/// connection's (it could not begin or roll back, and the group stops); the
/// inner one is the part's own, from a statement or from the commit.
async fn own_tx<B: GroupWrites>(
    backend: &B,
    conn: &mut Conn<B>,
    part: Part<'_>,
) -> Result<Result<Wrote>> {
    let mut tx = conn.begin().await.map_err(B::error)?;
    let wrote = match part {
        Part::Records(outcomes) => backend
            .record_attempts(&mut tx, outcomes)
            .await
            .map(|()| Wrote::Records),
        Part::Accepts(msgs) => backend
            .accept_messages(&mut tx, msgs)
            .await
            .map(Wrote::Accepts),
        Part::FanOuts(msgs) => backend.fan_out(&mut tx, msgs).await.map(Wrote::FanOuts),
    };
    match wrote {
        Ok(w) => Ok(tx.commit().await.map_err(B::error).map(|()| w)),
        Err(e) => {
            tx.rollback().await.map_err(B::error)?;
            Ok(Err(e))
        }
    }
}

/// What writing a group in one transaction came to.
#[derive(Debug)]
pub(crate) enum Written {
    /// Committed: what the new messages and the fan-outs answer, in order.
    Committed(Vec<Accepted>, Vec<Vec<Delivery>>),
    /// Nothing is stored: a write, or the commit's deferred checks, refused
    /// and the transaction was rolled back. Which write it was is found by
    /// writing the group again part by part.
    Refused(StoreError),
    /// The connection failed (to begin, to commit, to roll back): this is
    /// every write's answer, and the connection is let go.
    Failed(StoreError),
}

/// The group in one transaction, a statement (or a few) at a time: attempt
/// outcomes first, then the new messages, then the fan-outs, then the commit.
/// Each step is a round trip to the database.
pub(crate) async fn in_transaction<B: GroupWrites>(
    backend: &B,
    conn: &mut Conn<B>,
    outcomes: &[(Attempt, Delivery)],
    accepts: &[&Message],
    fanouts: &[&Message],
) -> Written {
    let mut tx = match conn.begin().await.map_err(B::error) {
        Ok(tx) => tx,
        Err(e) => return Written::Failed(e),
    };
    match write_all(backend, &mut tx, outcomes, accepts, fanouts).await {
        Ok((accepted, fanouts)) => match tx.commit().await.map_err(B::error) {
            Ok(()) => Written::Committed(accepted, fanouts),
            // A deferred foreign key (SQLite's deliveries and attempts) is
            // checked at the commit, and no statement says which write broke
            // it. (The failed commit's transaction is rolled back as it is
            // dropped.)
            Err(StoreError::NotFound) => Written::Refused(StoreError::NotFound),
            Err(e) => Written::Failed(e),
        },
        Err(e) => match tx.rollback().await.map_err(B::error) {
            Ok(()) => Written::Refused(e),
            Err(gone) => Written::Failed(gone),
        },
    }
}

/// The group's writes as plain statements on `conn`: attempt outcomes first,
/// then the new messages, then the fan-outs; what the messages and fan-outs
/// answer comes back in order.
async fn write_all<B: GroupWrites>(
    backend: &B,
    conn: &mut Conn<B>,
    outcomes: &[(Attempt, Delivery)],
    accepts: &[&Message],
    fanouts: &[&Message],
) -> Result<(Vec<Accepted>, Vec<Vec<Delivery>>)> {
    if !outcomes.is_empty() {
        backend.record_attempts(conn, outcomes).await?;
    }
    let accepted = if accepts.is_empty() {
        Vec::new()
    } else {
        backend.accept_messages(conn, accepts).await?
    };
    let fanouts = if fanouts.is_empty() {
        Vec::new()
    } else {
        backend.fan_out(conn, fanouts).await?
    };
    Ok((accepted, fanouts))
}

/// Runs one op in a transaction of its own. On a connection failure the
/// error comes back with the op answered by it.
async fn run_one<B: GroupWrites>(
    backend: &B,
    conn: &mut Conn<B>,
    op: Op,
) -> std::result::Result<Done, (StoreError, Done)> {
    let wrote = match &op {
        Op::Accept(msg, _) => own_tx(backend, conn, Part::Accepts(&[msg])).await,
        Op::FanOut(msg, _, _) => own_tx(backend, conn, Part::FanOuts(&[msg])).await,
        Op::RecordAttempts(outcomes, _) => own_tx(backend, conn, Part::Records(outcomes)).await,
    };
    let wrote = match wrote {
        Ok(w) => w,
        Err(e) => {
            let d = Done::failed(op, &e);
            return Err((e, d));
        }
    };
    Ok(match op {
        Op::Accept(_, reply) => Done::Accept(
            reply,
            wrote.and_then(|w| match w {
                Wrote::Accepts(mut accepted) => accepted
                    .pop()
                    .ok_or_else(|| StoreError::Other("the message was not answered".into())),
                _ => Err(StoreError::Other("the message was not answered".into())),
            }),
        ),
        Op::FanOut(_, _, reply) => Done::FanOut(
            reply,
            wrote.map(|w| match w {
                Wrote::FanOuts(mut fanouts) => fanouts.pop().unwrap_or_default(),
                _ => Vec::new(),
            }),
        ),
        Op::RecordAttempts(_, reply) => Done::Unit(reply, wrote.map(|_| ())),
    })
}

/// Commits `sets` of attempt outcomes as one group, as the writer does with
/// the sets waiting at one moment, and answers each set: tests can so put
/// several writes in one transaction for certain.
#[cfg(test)]
pub(crate) async fn record_as_one_group<B: GroupWrites>(
    pool: &Pool<B::Db>,
    backend: &B,
    sets: Vec<Outcomes>,
) -> Vec<Result<()>> {
    let mut answers = Vec::new();
    let ops = sets
        .into_iter()
        .map(|outcomes| {
            let (reply, answer) = oneshot::channel();
            answers.push(answer);
            Op::RecordAttempts(outcomes, reply)
        })
        .collect();
    commit(pool, backend, &mut None, ops).await;
    let mut results = Vec::new();
    for answer in answers {
        results.push(answer.await.unwrap_or_else(|_| Err(closed())));
    }
    results
}

fn clone_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(inner) => StoreError::Unavailable(inner.to_string().into()),
        StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
        StoreError::Invalid(m) => StoreError::Invalid(m.clone()),
        StoreError::NotFound => StoreError::NotFound,
        StoreError::Other(inner) => StoreError::Other(inner.to_string().into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_takes_fan_outs_up_to_the_limit_and_a_wide_one_alone() {
        let mut queue: VecDeque<(usize, &str)> = [
            (50, "a"),
            (50, "b"),
            (20, "c"),
            (100, "d"),
            (300, "e"),
            (1, "f"),
        ]
        .into();
        assert_eq!(take_within(&mut queue, 128), vec!["a", "b", "c"]);
        assert_eq!(take_within(&mut queue, 128), vec!["d"]);
        assert_eq!(
            take_within(&mut queue, 128),
            vec!["e"],
            "wider than the limit: alone"
        );
        assert_eq!(take_within(&mut queue, 128), vec!["f"]);
        assert!(take_within(&mut queue, 128).is_empty());
    }

    #[test]
    fn groups_get_the_larger_bounds_only_once_new_messages_stop() {
        let now = Instant::now();
        let small = Bounds {
            writes: MAX_GROUP,
            fanout_rows: FANOUT_ROWS,
        };
        let large = Bounds {
            writes: MAX_GROUP_QUIET,
            fanout_rows: FANOUT_ROWS_QUIET,
        };
        assert_eq!(bounds(None, now), large, "none ever");
        assert_eq!(bounds(Some(now), now), small, "one just now");
        let recent = now - QUIET / 2;
        assert_eq!(bounds(Some(recent), now), small);
        let old = now - QUIET;
        assert_eq!(bounds(Some(old), now), large);
    }
}
