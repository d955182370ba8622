//! Domain records as the store keeps them. The API's wire shapes live in the
//! server crate; these are the facts those shapes are rendered from.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub type Metadata = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Application {
    pub id: String,
    pub uid: Option<String>,
    pub name: String,
    pub throttle_rate: Option<u32>,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventType {
    pub name: String,
    pub description: String,
    pub archived: bool,
    pub deprecated: bool,
    pub schemas: Option<serde_json::Value>,
    pub group_name: Option<String>,
    pub feature_flags: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A signing key that was rotated out and still signs until `expires_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OldSecret {
    pub key: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: String,
    pub app_id: String,
    pub uid: Option<String>,
    pub url: String,
    pub description: String,
    pub disabled: bool,
    pub throttle_rate: Option<u32>,
    /// `None` (or empty) subscribes to every event type.
    pub event_types: Option<Vec<String>>,
    /// `None` (or empty) receives messages on any channel, or none.
    pub channels: Option<Vec<String>>,
    pub metadata: Metadata,
    /// Custom headers sent with each request.
    pub headers: BTreeMap<String, String>,
    /// The current secret in its textual form (`whsec_...` or `whsk_...`).
    pub secret: String,
    /// Rotated-out secrets that still sign, oldest expiry first.
    pub old_secrets: Vec<OldSecret>,
    /// hookd extensions (signing scheme, payload shape, retry, timeout, batch),
    /// kept as the validated JSON object the API accepted.
    pub settings: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Endpoint {
    /// Secrets that sign right now: the current one first, then unexpired old ones.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        std::iter::once(self.secret.as_str())
            .chain(
                self.old_secrets
                    .iter()
                    .filter(|o| o.expires_at > now)
                    .map(|o| o.key.as_str()),
            )
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub app_id: String,
    pub event_id: Option<String>,
    pub event_type: String,
    /// The payload's JSON text exactly as the producer sent it; `None` once expunged.
    pub payload: Option<String>,
    pub channels: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    /// When the producer asked for delivery to start (`deliverAt`); `None` = at once.
    pub deliver_at: Option<DateTime<Utc>>,
}

impl Message {
    /// When the message's deliveries are first due.
    pub fn first_due(&self) -> DateTime<Utc> {
        self.deliver_at
            .filter(|t| *t > self.created_at)
            .unwrap_or(self.created_at)
    }
}

/// Delivery status of a message to one endpoint, with Svix's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MessageStatus {
    Success = 0,
    Pending = 1,
    Fail = 2,
    Sending = 3,
    Canceled = 4,
}

impl MessageStatus {
    pub fn as_i64(self) -> i64 {
        self as i64
    }

    pub fn from_i64(v: i64) -> Option<Self> {
        Some(match v {
            0 => Self::Success,
            1 => Self::Pending,
            2 => Self::Fail,
            3 => Self::Sending,
            4 => Self::Canceled,
            _ => return None,
        })
    }

    pub fn text(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Pending => "pending",
            Self::Fail => "fail",
            Self::Sending => "sending",
            Self::Canceled => "canceled",
        }
    }
}

/// What caused an attempt: the schedule, or a person (resend).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TriggerType {
    Scheduled = 0,
    Manual = 1,
}

impl TriggerType {
    pub fn from_i64(v: i64) -> Self {
        if v == 1 {
            Self::Manual
        } else {
            Self::Scheduled
        }
    }
}

/// One message bound for one endpoint: the unit of work the delivery engine claims.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    pub app_id: String,
    pub msg_id: String,
    pub endpoint_id: String,
    pub status: MessageStatus,
    /// How many scheduled attempts have been made.
    pub attempts: u32,
    pub next_attempt: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub id: String,
    pub app_id: String,
    pub msg_id: String,
    pub endpoint_id: String,
    pub url: String,
    /// Response body, cut at 20 kB; `None` once expunged.
    pub response: Option<String>,
    /// HTTP status, or 0 for a transport error.
    pub response_status_code: i32,
    pub response_duration_ms: i64,
    pub status: MessageStatus,
    pub trigger_type: TriggerType,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    Running,
    Finished,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackgroundTask {
    pub id: String,
    /// Svix task type, e.g. `endpoint.recover`.
    pub task: String,
    pub status: TaskStatus,
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Who a bearer token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenScope {
    Admin,
    App(String),
}

/// Per-status counts of an endpoint's deliveries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointStats {
    pub success: u64,
    pub pending: u64,
    pub sending: u64,
    pub fail: u64,
    pub canceled: u64,
}

/// The current time at the millisecond precision the stores keep, so that a
/// record reads back exactly as it was returned when created.
pub fn now() -> DateTime<Utc> {
    truncate_ms(Utc::now())
}

/// `t` cut to the millisecond precision the stores keep.
pub fn truncate_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}
