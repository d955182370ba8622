//! Small value types that cross the [`Store`](crate::Store) boundary.

use chrono::{DateTime, Utc};
use hookd_core::model::{MessageStatus, TokenScope};

/// One page request, already translated from the API's iterator: rows strictly
/// beyond `after` in the direction of `desc`, at most `limit` of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageReq {
    pub limit: u32,
    pub after: Option<String>,
    pub desc: bool,
}

impl PageReq {
    pub fn first(limit: u32, desc: bool) -> Self {
        Self {
            limit,
            after: None,
            desc,
        }
    }
}

/// Filters shared by message listings (by app or by endpoint).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageFilter {
    pub channel: Option<String>,
    pub tag: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub before: Option<DateTime<Utc>>,
    pub after: Option<DateTime<Utc>>,
    /// Only for endpoint listings: the delivery's status.
    pub status: Option<MessageStatus>,
}

/// Filters for attempt listings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttemptFilter {
    pub msg_id: Option<String>,
    pub endpoint_id: Option<String>,
    pub status: Option<MessageStatus>,
    /// 0 for transport errors, else 100/200/300/400/500 for that class.
    pub status_code_class: Option<i32>,
    pub channel: Option<String>,
    pub tag: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub before: Option<DateTime<Utc>>,
    pub after: Option<DateTime<Utc>>,
}

/// A bearer token as stored: only its SHA-256 hash, never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: String,
    pub hash: String,
    pub scope: TokenScope,
    /// The token may only read (`GET`); an app-portal token issued with `readOnly`.
    pub read_only: bool,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A response kept for idempotent replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyState {
    /// This caller now owns the key and must complete or abort it.
    Started,
    /// Another request with the same key is still running.
    InProgress,
    /// The key finished earlier; replay this.
    Completed(StoredResponse),
}

/// What accepting a message did with its fan-out ([`crate::Store::accept_message`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    /// Written with the message, its app being narrow: these deliveries.
    FannedOut(Vec<hookd_core::model::Delivery>),
    /// Left pending for [`crate::Store::fan_out`]; the app had this many
    /// endpoints, about as many deliveries as the fan-out will write.
    Pending { endpoints: usize },
}

/// How many content expunges a store has carried out,
/// advanced after each one's statement has run (whether or not it found the
/// message). Whoever holds a copy of a message's payload reads the count
/// before the payload was stored or read, and may send the copy later only
/// while the count is unchanged: any expunge that could have removed that
/// payload advances it in between. The PostgreSQL store also advances it for
/// each expunge another node reports (its `expunges` module).
#[derive(Debug, Default)]
pub struct ContentEpoch(std::sync::atomic::AtomicU64);

impl ContentEpoch {
    pub fn current(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn advance(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
}
