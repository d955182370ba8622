//! Shared by the queue test suites: tasks, the Redis under test (when
//! `HOOKD_TEST_REDIS_URL` names one), and keys that clean up after themselves.
#![allow(dead_code)]

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use chrono::Utc;
use hookd_queue::redis::{RedisOptions, RedisQueue};
use hookd_queue::Task;

pub fn task(n: usize, delay_ms: i64) -> Task {
    Task {
        delivery_id: format!("msgep_{n}"),
        msg_id: format!("msg_{n}"),
        endpoint_id: "ep_1".into(),
        app_id: "app_1".into(),
        due: Utc::now() + chrono::Duration::milliseconds(delay_ms),
        manual: false,
        hint: None,
    }
}

/// The Redis to test against, if any.
pub fn redis_url() -> Option<String> {
    std::env::var("HOOKD_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A key prefix of its own for one test, so tests running at once (and other
/// users of the same Redis) never see each other's keys.
pub struct TestKeys {
    pub url: String,
    pub prefix: String,
}

impl TestKeys {
    pub fn new(url: &str) -> Self {
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Self {
            url: url.to_string(),
            prefix: format!("hookd-test-{random:016x}"),
        }
    }

    pub fn ready(&self) -> String {
        format!("{}:ready", self.prefix)
    }

    pub fn delayed(&self) -> String {
        format!("{}:delayed", self.prefix)
    }

    pub fn group(&self) -> String {
        format!("{}-workers", self.prefix)
    }

    /// A queue on these keys, as one node named `consumer` would open it.
    pub async fn queue(&self, consumer: &str, visibility_timeout: Duration) -> RedisQueue {
        self.queue_at(&self.url, consumer, visibility_timeout).await
    }

    /// Like [`TestKeys::queue`], through another URL for the same Redis.
    pub async fn queue_at(
        &self,
        url: &str,
        consumer: &str,
        visibility_timeout: Duration,
    ) -> RedisQueue {
        RedisQueue::connect(
            url,
            RedisOptions {
                prefix: self.prefix.clone(),
                consumer: consumer.to_string(),
                visibility_timeout,
            },
        )
        .await
        .expect("connecting to the test Redis")
    }

    /// A plain connection, for poking at the keys behind the queue's back.
    pub async fn raw(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for TestKeys {
    fn drop(&mut self) {
        // Best effort, and synchronous because `Drop` is: a failed test still
        // leaves nothing behind.
        let Ok(mut conn) = redis::Client::open(self.url.as_str()).and_then(|c| c.get_connection())
        else {
            return;
        };
        let _ = redis::cmd("DEL")
            .arg(self.ready())
            .arg(self.delayed())
            .exec(&mut conn);
    }
}
