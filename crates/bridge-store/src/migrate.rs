//! Schema migrations: numbered SQL files compiled into the binary, applied in order, each
//! once, inside a transaction that also records it. Concurrent starts are safe: PostgreSQL
//! serializes them with an advisory lock, SQLite with `BEGIN IMMEDIATE`.

use sqlx::Executor;

use sqlx::AnyPool;

use crate::backend::Backend;
use crate::error::{Op, Result};

/// (version, SQL with `{{id}}` for the auto-increment primary key).
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_export.sql")),
    (3, include_str!("../migrations/0003_tenants.sql")),
    (4, include_str!("../migrations/0004_deliveries.sql")),
    (5, include_str!("../migrations/0005_event_errors.sql")),
    (6, include_str!("../migrations/0006_tenant_disconnects.sql")),
    (7, include_str!("../migrations/0007_privacy.sql")),
    (8, include_str!("../migrations/0008_leases.sql")),
    (9, include_str!("../migrations/0009_conversation_facts.sql")),
    (10, include_str!("../migrations/0010_console.sql")),
    (11, include_str!("../migrations/0011_facts_outcomes.sql")),
    (12, include_str!("../migrations/0012_widget.sql")),
    (13, include_str!("../migrations/0013_deletes.sql")),
    (14, include_str!("../migrations/0014_typed_columns.sql")),
    (15, include_str!("../migrations/0015_signal_records.sql")),
    (16, include_str!("../migrations/0016_signal_holds.sql")),
    (17, include_str!("../migrations/0017_opt_outs.sql")),
];

/// What PostgreSQL runs after the migration of the same version.
const POSTGRES_ONLY: &[(i64, &str)] = &[(
    14,
    include_str!("../migrations/0014_typed_columns.postgres.sql"),
)];

/// Arbitrary constant naming driftbridge's migration lock.
const PG_LOCK_KEY: i64 = 0x6472_6966_7462;

pub(crate) async fn run(pool: &AnyPool, backend: Backend, until: Option<i64>) -> Result<()> {
    let mut conn = pool.acquire().await.op("acquiring a connection")?;
    let begin = match backend {
        Backend::Sqlite => "BEGIN IMMEDIATE",
        Backend::Postgres => "BEGIN",
    };
    conn.execute(begin).await.op("starting the migration")?;
    let result = async {
        if backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(PG_LOCK_KEY)
                .execute(&mut *conn)
                .await
                .op("taking the migration lock")?;
        }
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS schema_migrations \
             (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut *conn)
        .await
        .op("creating schema_migrations")?;
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
            .fetch_all(&mut *conn)
            .await
            .op("reading schema_migrations")?;
        for (version, sql) in MIGRATIONS {
            if applied.contains(version) || until.is_some_and(|u| *version > u) {
                continue;
            }
            let id = match backend {
                Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
                Backend::Postgres => "BIGSERIAL PRIMARY KEY",
            };
            let mut sql = sql.replace("{{id}}", id);
            if backend == Backend::Postgres
                && let Some((_, more)) = POSTGRES_ONLY.iter().find(|(v, _)| v == version)
            {
                sql.push('\n');
                sql.push_str(more);
            }
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut *conn)
                .await
                .op("applying a migration")?;
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(*version)
                .bind(drift_types::now_ms())
                .execute(&mut *conn)
                .await
                .op("recording a migration")?;
            tracing::info!(migration.version = version, "applied migration");
        }
        Ok(())
    }
    .await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    conn.execute(end).await.op("finishing the migration")?;
    result
}
