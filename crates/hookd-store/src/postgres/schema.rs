//! Bringing the schema up to date, or, when this hookd may not change it,
//! checking that someone already has. In a cluster one `hookd migrate` (or one
//! `serve --migrate`) applies migrations; every other instance only checks, so
//! instances never race to change the schema under each other.

use std::collections::HashMap;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::PgPool;

use super::error::db;
use crate::{Result, StoreError};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The first words of the error an unmigrated database gets.
const BEHIND: &str =
    "the database schema is behind this hookd; run `hookd migrate` or start with `serve --migrate`";

/// Applies every migration not yet applied. Concurrent runs are serialised by
/// sqlx's advisory lock, so several instances started with `--migrate` at
/// once are safe.
pub(super) async fn migrate(pool: &PgPool) -> Result<()> {
    MIGRATOR.run(pool).await.map_err(|e| match e {
        MigrateError::Execute(e) => db(e),
        other => StoreError::Other(Box::new(other)),
    })
}

/// Succeeds when every migration this hookd knows has been applied unchanged.
/// Migrations this hookd does not know (a newer one already migrated the
/// database) are accepted: they only ever add to the schema.
pub(super) async fn verify(pool: &PgPool) -> Result<()> {
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(pool)
        .await
        .map_err(db)?;
    let applied: HashMap<i64, (Vec<u8>, bool)> = if table.is_some() {
        sqlx::query_as::<_, (i64, Vec<u8>, bool)>(
            "SELECT version, checksum, success FROM _sqlx_migrations",
        )
        .fetch_all(pool)
        .await
        .map_err(db)?
        .into_iter()
        .map(|(version, checksum, success)| (version, (checksum, success)))
        .collect()
    } else {
        HashMap::new()
    };

    let mut missing = Vec::new();
    for m in MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
    {
        let name = format!("{:04} {}", m.version, m.description);
        let problem = match applied.get(&m.version) {
            None => {
                missing.push(name);
                continue;
            }
            Some((_, false)) => "failed part-way; repair the database, then run `hookd migrate`",
            Some((checksum, true)) if checksum.as_slice() != &*m.checksum => {
                "was changed after it was applied to this database"
            }
            Some(_) => continue,
        };
        return Err(other(format!("migration {name} {problem}")));
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(other(format!("{BEHIND} (missing: {})", missing.join(", "))))
    }
}

fn other(text: String) -> StoreError {
    StoreError::Other(text.into())
}
