//! The audit trail's hash chains in the database: a row's link in SQL, and
//! `verify_mcp_audit`. (The ledger's writer links the rows: src/ledger/chain.rs.)
//! What a hash covers and what makes a chain whole is defined once, in
//! crates/core/src/audit_chain.rs, which `mcp-auth audit verify` uses offline too.

use crate::access;
use crate::errors;
use crate::spi;
use mcp_auth_core::audit_chain::{self, Broken, Checkpoints, Log, Start, Walk};
use pgrx::datum::{DatumWithOid, TimestampWithTimeZone};
use pgrx::prelude::*;
use pgrx::{PgMemoryContexts, Uuid};

/// A row's link in SQL, for whoever re-derives a hash by hand (docs/audit-chain.md):
/// its `prev_hash` and its `hash` (32 bytes each, in one value) over `fields`,
/// where `prev_hash` is the second half of `state` (the row before's link), or
/// `head` when `state` is NULL. (The writer links in Rust, src/ledger/chain.rs.)
#[pg_extern(immutable, parallel_safe)]
fn mcp_audit_chain_step(
    state: Option<&[u8]>,
    head: Option<&[u8]>,
    fields: Option<pgrx::Array<&str>>,
) -> Vec<u8> {
    let prev = match state {
        Some(link) => &link[link.len().saturating_sub(32)..],
        None => head.unwrap_or_else(|| errors::required("head")),
    };
    let fields = fields.unwrap_or_else(|| errors::required("fields"));
    let mut link = prev.to_vec();
    link.extend_from_slice(&audit_chain::link(prev, fields.iter()));
    link
}

/// Rows fetched from the cursor at a time.
const BATCH: i64 = 10_000;

/// The query of a walk over one chain: first a row with what the walk is checked
/// against (head, latest anchor, checkpoints, when the chains began), then the
/// rows (`Log::walk_sql`). One statement, so one snapshot: a walk read apart from
/// its head or anchor would see rows written, or purged, in between.
fn walk_sql(log: Log) -> String {
    let s = spi::schema();
    format!(
        "SELECT NULL::pg_catalog.int8, NULL::pg_catalog.bytea, NULL::pg_catalog.bytea, NULL::pg_catalog.text[],
                h.seq, h.hash, a.seq, a.hash, {anchor_time}, c.seqs, c.hashes, ({began})
           FROM (SELECT) one
           LEFT JOIN {s}.mcp_audit_heads h ON h.tenant_id = $1 AND h.log = $4
           LEFT JOIN LATERAL (SELECT a.seq, a.hash, a.at FROM {s}.mcp_audit_anchors a
                               WHERE a.tenant_id = $1 AND a.log = $4 ORDER BY a.seq DESC LIMIT 1) a ON true
          CROSS JOIN (SELECT pg_catalog.array_agg(c.seq), pg_catalog.array_agg(c.hash)
                        FROM {s}.mcp_audit_checkpoints c WHERE c.tenant_id = $1 AND c.log = $4) c(seqs, hashes)
         UNION ALL
         SELECT w.*, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM ({rows}) w",
        anchor_time = audit_chain::ANCHOR_TIME,
        began = audit_chain::began_sql(&s),
        rows = log.walk_sql(&s, true),
    )
}

/// The verdict on one chain, as `verify_mcp_audit` returns it.
struct Verdict {
    tenant: Uuid,
    log: Log,
    walk: Walk,
    broken: Option<Broken>,
}

/// What the first row of `walk_sql` says a walk is checked against.
struct Against {
    head: Option<(i64, Vec<u8>)>,
    anchor: Option<Start>,
    checkpoints: Checkpoints,
    began: Option<i64>,
}

impl Against {
    fn read(row: &pgrx::spi::SpiHeapTupleData) -> Against {
        let get_i64 = |i| row.get::<i64>(i).ok().flatten();
        let get_bytes = |i| row.get::<Vec<u8>>(i).ok().flatten();
        let seqs: Vec<Option<i64>> = row
            .get::<Vec<Option<i64>>>(10)
            .ok()
            .flatten()
            .unwrap_or_default();
        let hashes: Vec<Option<Vec<u8>>> = row
            .get::<pgrx::Array<&[u8]>>(11)
            .ok()
            .flatten()
            .map(|a| a.iter().map(|h| h.map(<[u8]>::to_vec)).collect())
            .unwrap_or_default();
        let points = seqs
            .into_iter()
            .zip(hashes)
            .filter_map(|(s, h)| Some((s?, h?)))
            .collect();
        Against {
            head: get_i64(5).zip(get_bytes(6)),
            anchor: match (get_i64(7), get_bytes(8), get_i64(9)) {
                (Some(seq), Some(hash), Some(at)) => Some(Start::Anchor { seq, hash, at }),
                _ => None,
            },
            checkpoints: Checkpoints::new(points),
            began: get_i64(12),
        }
    }
}

/// Walks one chain's rows of [from, to) in `ORDER`, checking every link, the
/// checkpoints kept in the database and, for a walk to the end, the head.
fn verify_chain(
    tenant: Uuid,
    log: Log,
    from: Option<TimestampWithTimeZone>,
    to: Option<TimestampWithTimeZone>,
) -> Verdict {
    let sql = walk_sql(log);
    let mut walk = None;
    let mut against = None;
    let mut broken = None;
    let mut scratch = PgMemoryContexts::new("mcp_auth verify");
    Spi::connect(|c| {
        let args: [DatumWithOid; 4] = [
            tenant.into(),
            DatumWithOid::from(from),
            DatumWithOid::from(to),
            log.name().into(),
        ];
        let mut cursor = c.open_cursor(sql.as_str(), &args);
        'fetch: loop {
            let table = errors::spi(cursor.fetch(BATCH));
            if table.is_empty() {
                break;
            }
            let stop = unsafe {
                scratch.switch_to(|_| {
                    for row in table {
                        let Some(walk) = walk.as_mut() else {
                            // (A row's fields are never NULL: this is the header.)
                            if !matches!(row.get::<pgrx::Array<&str>>(4), Ok(None)) {
                                pgrx::error!("mcp_auth: the walk's first row is not its header");
                            }
                            let a = Against::read(&row);
                            let start = match from {
                                Some(_) => Start::Range,
                                None => a.anchor.clone().unwrap_or(Start::Genesis),
                            };
                            walk = Some(Walk::new(start, a.began));
                            against = Some(a);
                            continue;
                        };
                        let checkpoints = &mut against.as_mut().expect("read first").checkpoints;
                        let array = row.get::<pgrx::Array<&str>>(4).ok().flatten();
                        let fields: Vec<Option<&str>> =
                            array.iter().flat_map(|a| a.iter()).collect();
                        let result = walk.row(
                            row.get::<i64>(1).ok().flatten(),
                            row.get::<&[u8]>(2).ok().flatten(),
                            row.get::<&[u8]>(3).ok().flatten(),
                            &fields,
                        );
                        if let Err(e) =
                            result.and_then(|()| checkpoints.passed(walk, "a checkpoint"))
                        {
                            broken = Some(e);
                            return true;
                        }
                    }
                    false
                })
            };
            unsafe {
                pg_sys::SPI_freetuptable(pg_sys::SPI_tuptable);
                scratch.reset();
            }
            if stop {
                break 'fetch;
            }
        }
    });
    let (walk, against) = walk
        .zip(against)
        .expect("the walk's first row is always there");
    if broken.is_none() && to.is_none() {
        broken = walk
            .finish(against.head.as_ref(), &against.checkpoints, "a checkpoint")
            .err();
    }
    Verdict {
        tenant,
        log,
        walk,
        broken,
    }
}

/// Verifies the audit chains of one tenant (`p_tenant`; for superusers, every tenant
/// with a chain when NULL) over [p_from, p_to) (the whole chains when both are
/// NULL), and reports per tenant and chain (`log`: usage, activity) what it covered
/// and the first broken link: an edited, deleted, inserted or moved row, or rows
/// missing at the end.
#[allow(clippy::type_complexity)]
#[pg_extern(security_definer, stable)]
#[search_path(pg_catalog, pg_temp)]
fn verify_mcp_audit(
    p_tenant: default!(Option<Uuid>, "NULL"),
    p_from: default!(Option<TimestampWithTimeZone>, "NULL"),
    p_to: default!(Option<TimestampWithTimeZone>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(tenant_id, Uuid),
        name!(log, &'static str),
        name!(verified, bool),
        name!(first_seq, Option<i64>),
        name!(last_seq, Option<i64>),
        name!(rows_checked, i64),
        name!(covered, String),
        name!(broken_seq, Option<i64>),
        name!(problem, Option<String>),
    ),
> {
    let tenants: Vec<Uuid> = match (access::managed_tenant(), p_tenant) {
        (Some(own), Some(t)) if t != own => errors::denied(
            format!("p_tenant: this session may only verify the audit of tenant {own}"),
            None,
        ),
        (Some(own), _) => vec![own],
        (None, Some(t)) => vec![t],
        (None, None) => Spi::connect(|c| {
            let sql = audit_chain::tenants_sql(&spi::schema());
            errors::spi(c.select(sql.as_str(), None, &[]))
                .filter_map(|r| r.get::<Uuid>(1).ok().flatten())
                .collect()
        }),
    };
    let replaced: Vec<String> = Spi::connect(|c| {
        errors::spi(c.select(
            audit_chain::builtins_check_sql(&spi::schema()).as_str(),
            None,
            &[],
        ))
        // Every row counts, even one whose message is NULL.
        .map(|r| {
            r.get::<String>(1)
                .ok()
                .flatten()
                .unwrap_or_else(|| "(a finding whose name was blanked)".into())
        })
        .collect()
    });
    if !replaced.is_empty() {
        pgrx::ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            format!(
                "the audit cannot be verified here: what the chain is read through is not PostgreSQL's own ({})",
                replaced.join(", ")
            ),
            "Verify a copy restored into a cluster whose catalogs nobody changed, with mcp-auth audit verify."
        );
    }
    if let (Some(from), Some(to)) = (p_from, p_to) {
        if to <= from {
            errors::bad_param("p_to", "must be later than p_from");
        }
    }
    let rows: Vec<_> = tenants
        .into_iter()
        .flat_map(|t| Log::ALL.map(|log| (t, log)))
        .map(|(t, log)| {
            let v = verify_chain(t, log, p_from, p_to);
            let covered = v.walk.covered();
            (
                v.tenant,
                v.log.name(),
                v.broken.is_none(),
                v.walk.first,
                v.walk.last.as_ref().map(|(s, _)| *s),
                v.walk.rows,
                covered,
                v.broken.as_ref().map(|b| b.seq),
                v.broken.map(|b| b.problem),
            )
        })
        .collect();
    TableIterator::new(rows)
}

// The hourly checkpoint: due when the last one is an hour old (every worker start
// would be too often). Before 2.4.0 there are no chains to checkpoint.
const CHECKPOINT_IF_DUE: spi::Statement = spi::Statement {
    sql: "SELECT CASE WHEN pg_catalog.to_regclass('@s.mcp_audit_checkpoints') IS NULL THEN 0
                      WHEN NOT EXISTS (SELECT FROM @s.mcp_audit_checkpoints c
                                        WHERE c.taken_at > pg_catalog.now() - interval '1 hour')
                      THEN (SELECT pg_catalog.count(*) FROM @s.mcp_audit_checkpoint())::integer
                      ELSE 0 END",
    args: &[],
    writes: true,
};

/// Writes a checkpoint of every chain's head when the last is an hour old; run by
/// the notifier worker. False when mcp_auth is not installed here.
pub fn checkpoint_if_due() -> bool {
    pgrx::bgworkers::BackgroundWorker::transaction(|| {
        if !spi::is_installed() {
            return false;
        }
        let _ = crate::subxact::attempt(|| spi::run(&CHECKPOINT_IF_DUE, &[], |_| ()));
        true
    })
}
