//! The notifier worker's partition jobs (sql/partitions.sql holds the machinery;
//! docs/retention.md says why): each in a transaction of its own, each false when
//! mcp_auth is not installed in the worker's database (the worker then leaves).

use crate::spi::{self, Statement};
use pgrx::bgworkers::BackgroundWorker;

// 2.1.0 (a database not yet updated, served by this library) has no partitions.
const CAN_MAINTAIN: Statement = Statement {
    sql: "SELECT pg_catalog.to_regprocedure('@s.maintain_mcp_log_partitions(integer)') IS NOT NULL",
    args: &[],
    writes: false,
};

const MAINTAIN: Statement = Statement {
    sql: "SELECT @s.maintain_mcp_log_partitions()",
    args: &[],
    writes: true,
};

const DROP_PURGED: Statement = Statement {
    sql: "SELECT @s.mcp_drop_purged_logs()",
    args: &[],
    writes: true,
};

fn run(job: &Statement) -> bool {
    BackgroundWorker::transaction(|| {
        if !spi::is_installed() {
            return false;
        }
        if spi::first(&CAN_MAINTAIN, &[], |r| spi::col::<bool>(r, 1)) == Some(true) {
            spi::run(job, &[], |_| ());
        }
        true
    })
}

/// Makes the log partitions due, counts the days that are over and drops purged
/// ones (failures are WARNINGs in the server log, tried again next time).
pub fn maintain() -> bool {
    run(&MAINTAIN)
}

/// Drops the partitions a purge detached.
pub fn drop_purged() -> bool {
    run(&DROP_PURGED)
}
