//! Turns sqlx errors into [`StoreError`]s: broken uniqueness rules become a
//! `Conflict` that names what clashed, a missing parent row becomes `NotFound`,
//! and anything that says "try again later" (the server is unreachable,
//! restarting, overloaded, or chose this transaction as a deadlock victim)
//! becomes `Unavailable`, which the API answers with 503.

use sqlx::error::{DatabaseError, ErrorKind};

use crate::StoreError;

/// SQLSTATEs that describe the server's condition rather than the statement.
/// Codes are matched exactly; [`TRANSIENT_CLASSES`] covers whole classes.
const TRANSIENT_CODES: [&str; 8] = [
    "57P01", // admin_shutdown: the backend was terminated (pg_terminate_backend, fast shutdown)
    "57P02", // crash_shutdown: another backend crashed and the server is resetting
    "57P03", // cannot_connect_now: the server is starting up or shutting down
    "57014", // query_canceled: statement_timeout, or cancelled by an operator
    "40001", // serialization_failure
    "40P01", // deadlock_detected
    "55P03", // lock_not_available: lock_timeout
    "25006", // read_only_sql_transaction: connected to a standby after a failover
];

/// character_not_in_repertoire: what PostgreSQL answers to a text value
/// holding the NUL character, which its text type cannot store (SQLite can).
const NUL_IN_TEXT: &str = "22021";

/// `08`: connection exceptions; `53`: insufficient resources (disk full, out of
/// memory, too many connections).
const TRANSIENT_CLASSES: [&str; 2] = ["08", "53"];

pub(super) fn db(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(d) => match d.kind() {
            ErrorKind::UniqueViolation => {
                StoreError::Conflict(conflict_message(d.constraint(), d.message()))
            }
            ErrorKind::ForeignKeyViolation => StoreError::NotFound,
            _ if d.code().as_deref() == Some(NUL_IN_TEXT) => {
                StoreError::Invalid("text values cannot contain the NUL character (\\u0000)".into())
            }
            _ if is_transient(d.as_ref()) => StoreError::Unavailable(Box::new(err)),
            _ => StoreError::Other(Box::new(err)),
        },
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Box::new(err)),
        _ => StoreError::Other(Box::new(err)),
    }
}

/// A value read back from the database that the domain types cannot hold
/// (bad JSON, an unknown status, a timestamp out of range).
pub(super) use crate::codec::corrupt;

fn is_transient(d: &dyn DatabaseError) -> bool {
    d.code().is_some_and(|code| {
        TRANSIENT_CODES.contains(&code.as_ref())
            || TRANSIENT_CLASSES
                .iter()
                .any(|class| code.starts_with(class))
    })
}

/// PostgreSQL names the constraint (or unique index) that was broken; the
/// migrations name every one of them.
fn conflict_message(constraint: Option<&str>, pg_message: &str) -> String {
    let Some(constraint) = constraint else {
        return format!("A record with the same key already exists ({pg_message})");
    };
    let text = match constraint {
        "applications_uid_key" => "An application with that uid already exists",
        "applications_pkey" => "An application with that id already exists",
        "endpoints_app_id_uid_key" => "An endpoint with that uid already exists",
        "endpoints_pkey" => "An endpoint with that id already exists",
        "messages_app_event_id" => "A message with that eventId already exists",
        "messages_pkey" => "A message with that id already exists",
        "event_types_pkey" => "An event type with that name already exists",
        "tokens_pkey" | "tokens_hash_key" => "That token already exists",
        "deliveries_pkey" | "deliveries_msg_id_endpoint_id_key" => {
            "A delivery of that message to that endpoint already exists"
        }
        "attempts_pkey" => "An attempt with that id already exists",
        "background_tasks_pkey" => "A background task with that id already exists",
        other => return format!("A record with the same key already exists ({other})"),
    };
    text.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_message_names_the_clashing_field() {
        assert_eq!(
            conflict_message(Some("messages_app_event_id"), "duplicate key"),
            "A message with that eventId already exists"
        );
        assert_eq!(
            conflict_message(Some("endpoints_app_id_uid_key"), "duplicate key"),
            "An endpoint with that uid already exists"
        );
    }

    #[test]
    fn unknown_constraints_still_say_what_clashed() {
        let text = conflict_message(Some("widgets_colour_key"), "duplicate key");
        assert!(text.contains("widgets_colour_key"), "{text}");
        let text = conflict_message(None, "duplicate key value violates unique constraint");
        assert!(text.contains("violates unique"), "{text}");
    }

    #[test]
    fn unreachable_servers_and_pool_timeouts_are_unavailable() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(matches!(
            db(sqlx::Error::Io(refused)),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            db(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(db(sqlx::Error::RowNotFound), StoreError::Other(_)));
    }
}

/// The mapping of a connection that dies under the store, seen on a live
/// server (skipped without `HOOKD_TEST_POSTGRES_URL`).
#[cfg(test)]
mod live {
    use sqlx::{Connection, PgConnection};

    use super::*;

    #[tokio::test]
    async fn a_terminated_connection_is_unavailable() {
        let Ok(url) = std::env::var("HOOKD_TEST_POSTGRES_URL") else {
            return;
        };
        let mut victim = PgConnection::connect(&url).await.expect("connect");
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut victim)
            .await
            .expect("pid");
        let mut admin = PgConnection::connect(&url).await.expect("connect");
        // With a timeout, pg_terminate_backend waits until the backend is gone.
        let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
            .bind(pid)
            .fetch_one(&mut admin)
            .await
            .expect("terminate");
        assert!(killed);

        let err = sqlx::query("SELECT 1")
            .execute(&mut victim)
            .await
            .expect_err("the connection is gone");
        let mapped = db(err);
        assert!(matches!(mapped, StoreError::Unavailable(_)), "{mapped:?}");
    }
}
