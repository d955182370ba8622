//! Turns sqlx errors into [`StoreError`]s: broken uniqueness rules become a
//! `Conflict` that names what clashed, a missing parent row becomes `NotFound`,
//! and anything that says "try again later" becomes `Unavailable`.

use sqlx::error::{DatabaseError, ErrorKind};

use crate::StoreError;

/// SQLite primary result codes that describe the database's condition rather
/// than the statement: busy or locked past the busy timeout, out of memory,
/// I/O failure, disk full, file cannot be opened.
const TRANSIENT_CODES: [i32; 6] = [5, 6, 7, 10, 13, 14];

pub(super) fn db(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(d) => match d.kind() {
            ErrorKind::UniqueViolation => StoreError::Conflict(conflict_message(d.message())),
            ErrorKind::ForeignKeyViolation => StoreError::NotFound,
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
    d.code()
        .and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|extended| TRANSIENT_CODES.contains(&(extended & 0xff)))
}

/// SQLite reports `UNIQUE constraint failed: <table>.<col>[, <table>.<col>]`.
fn conflict_message(sqlite_message: &str) -> String {
    let columns = sqlite_message
        .strip_prefix("UNIQUE constraint failed: ")
        .unwrap_or(sqlite_message);
    let text = match columns {
        "applications.uid" => "An application with that uid already exists",
        "applications.id" => "An application with that id already exists",
        "endpoints.app_id, endpoints.uid" => "An endpoint with that uid already exists",
        "endpoints.id" => "An endpoint with that id already exists",
        "messages.app_id, messages.event_id" => "A message with that eventId already exists",
        "messages.id" => "A message with that id already exists",
        "event_types.name" => "An event type with that name already exists",
        "tokens.id" | "tokens.hash" => "That token already exists",
        "deliveries.id" | "deliveries.msg_id, deliveries.endpoint_id" => {
            "A delivery of that message to that endpoint already exists"
        }
        "attempts.id" => "An attempt with that id already exists",
        "background_tasks.id" => "A background task with that id already exists",
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
            conflict_message("UNIQUE constraint failed: messages.app_id, messages.event_id"),
            "A message with that eventId already exists"
        );
        assert_eq!(
            conflict_message("UNIQUE constraint failed: endpoints.app_id, endpoints.uid"),
            "An endpoint with that uid already exists"
        );
    }

    #[test]
    fn unknown_constraints_still_say_what_clashed() {
        let text = conflict_message("UNIQUE constraint failed: widgets.colour");
        assert!(text.contains("widgets.colour"), "{text}");
    }

    #[test]
    fn pool_timeouts_are_unavailable() {
        assert!(matches!(
            db(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(db(sqlx::Error::RowNotFound), StoreError::Other(_)));
    }
}
