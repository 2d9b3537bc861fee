//! Links a round's usage entries into their tenants' audit chains, in the writer,
//! before its statement stores them (sql/queries/ledger_write.sql takes each row's
//! seq, time, prev_hash and hash from its entry).
//!
//! Why here and not in the statement: the writer is the one process every call
//! waits on, and its rounds are short (a few entries each under load), so what a
//! round costs is what each call waits. Linking in SQL (a heads lookup per row, a
//! window pass per chain, each field printed into an array) and moving every head
//! in every round cost the ledger a sixth of its throughput.
//!
//! - **The heads.** The writer is the only one that writes chains, so it keeps their
//!   heads itself (`Known`) and writes them to mcp_audit_heads at most `HEADS_EVERY`
//!   apart (compare-and-set: never over a head someone else wrote), when a sync
//!   entry asks (mcp_ledger_sync), before it leaves or shuts down, and at once for a
//!   chain's first row. Shared memory says whether the last writer left them all
//!   recorded; if so the next one takes them as they are. Otherwise (a crash, the
//!   server's start), and for a head found not as the writer left it, it asks
//!   mcp_audit_reached (`recover`: the furthest of the head, the rows after it and
//!   the last anchor), and brings every recorded head up to date (`CATCH_UP`)
//!   before it may say they are.
//! - **The fields.** What a hash covers is defined once, in
//!   crates/core/src/audit_chain.rs (`USAGE_FIELDS`, `ACTIVITY_FIELDS`), which the
//!   verifiers read back from the stored rows. The text hashed here is that same
//!   text: each value goes through the input function of the statement's cast and
//!   the output function the verifiers print with, and the activity row's metadata
//!   is printed as jsonb prints what the statement builds.

use crate::spi::{self, Statement, JSONB};
use mcp_auth_core::audit_chain::{self, GENESIS};
use pgrx::prelude::*;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::time::{Duration, Instant};

/// How far behind the writer the heads table may be.
const HEADS_EVERY: Duration = Duration::from_secs(1);

/// Microseconds from 1970-01-01 to 2000-01-01 (PostgreSQL's epoch): the fields
/// print a time in µs since 1970, the entries carry µs since 2000.
const PG_EPOCH_US: i64 = 946_684_800_000_000;

/// A time as µs since 2000 (the entries' unit); NULL for an infinite one.
macro_rules! micros {
    ($col:literal) => {
        concat!(
            "CASE WHEN pg_catalog.isfinite(",
            $col,
            ") THEN pg_catalog.int8(pg_catalog.numeric_mul(\
             pg_catalog.extract('epoch'::pg_catalog.text, ",
            $col,
            "), '1000000'::pg_catalog.numeric)) \
             - 946684800000000 END"
        )
    };
}

/// The heads table's rows for the tenants in $1 (a JSON array of tenant ids), and
/// whether each logs activity (read in every round: the setting may change).
const TABLE: Statement = Statement {
    sql: concat!(
        "SELECT t.id, COALESCE(cfg.activity_logging, true),
                hu.seq, hu.hash, ", micros!("hu.at"), ", ha.seq, ha.hash, ", micros!("ha.at"), "
           FROM pg_catalog.jsonb_array_elements_text($1) AS t(id)
           LEFT JOIN @s.mcp_server_config cfg ON cfg.tenant_id = t.id::pg_catalog.uuid
           LEFT JOIN @s.mcp_audit_heads hu ON hu.tenant_id = t.id::pg_catalog.uuid AND hu.log = 'usage'
           LEFT JOIN @s.mcp_audit_heads ha ON ha.tenant_id = t.id::pg_catalog.uuid AND ha.log = 'activity'"
    ),
    args: &[JSONB],
    writes: false,
};

/// How far the chains of the tenants in $1 (a JSON array of tenant ids) have come
/// (sql/audit_chain.sql, mcp_audit_reached): for a writer that does not know them.
const REACHED: Statement = Statement {
    sql: concat!(
        "SELECT r.tenant_id::pg_catalog.text, r.log, r.seq, r.hash, ", micros!("r.at"), "
           FROM @s.mcp_audit_reached(ARRAY(SELECT t.id::pg_catalog.uuid
                                             FROM pg_catalog.jsonb_array_elements_text($1) AS t(id))) r
          WHERE r.seq IS NOT NULL"
    ),
    args: &[JSONB],
    writes: false,
};

/// Which of the tenants in $1 (a JSON array) have chained rows in the usage log:
/// asked only for tenants with no recorded head, which have none unless an edit
/// removed their heads. (Only the writer writes the usage log, so the search reads
/// no one else's rows; it starts from the newest, after which chained rows come.)
const CHAINED: Statement = Statement {
    sql: "SELECT t.id FROM pg_catalog.jsonb_array_elements_text($1) AS t(id)
           WHERE EXISTS (SELECT FROM (SELECT l.seq FROM @s.mcp_key_usage_logs l
                                       WHERE l.tenant_id = t.id::pg_catalog.uuid AND l.seq IS NOT NULL
                                       ORDER BY l.created_at DESC LIMIT 1) l)",
    args: &[JSONB],
    writes: false,
};

/// Moves every recorded head that is behind its chain (or is no link) to where
/// the chain has come (mcp_audit_reached of all of them).
const CATCH_UP: Statement = Statement {
    sql: "UPDATE @s.mcp_audit_heads h SET seq = r.seq, hash = r.hash, at = r.at
            FROM @s.mcp_audit_reached(NULL) r
           WHERE r.seq IS NOT NULL AND h.tenant_id = r.tenant_id AND h.log = r.log
             AND (h.seq <> r.seq OR h.hash <> r.hash)",
    args: &[],
    writes: true,
};

/// Moves heads in the table, $1 a JSON array of tenant_id, log, seq, hash (hex),
/// at (µs) and was_seq, was_hash: where the writer last saw the table have it (0:
/// no row). A row that is not as the writer saw it is left alone (someone else
/// wrote it: the writer reads it again in its next round with that tenant, and
/// goes on from there). Returns the heads it wrote.
const WRITE: Statement = Statement {
    sql: "WITH x AS (
              SELECT (x->>'tenant_id')::pg_catalog.uuid AS tenant_id, x->>'log' AS log,
                     (x->>'seq')::pg_catalog.int8 AS seq, pg_catalog.decode(x->>'hash', 'hex') AS hash,
                     timestamptz '2000-01-01 00:00:00+00' + (x->>'at')::pg_catalog.int8 * interval '1 microsecond' AS at,
                     (x->>'was_seq')::pg_catalog.int8 AS was_seq, pg_catalog.decode(x->>'was_hash', 'hex') AS was_hash
                FROM pg_catalog.jsonb_array_elements($1) AS x),
          moved AS (
              UPDATE @s.mcp_audit_heads h SET seq = x.seq, hash = x.hash, at = x.at
                FROM x
               WHERE x.was_seq > 0 AND h.tenant_id = x.tenant_id AND h.log = x.log
                 AND h.seq = x.was_seq AND h.hash = x.was_hash
              RETURNING h.tenant_id, h.log),
          added AS (
              INSERT INTO @s.mcp_audit_heads (tenant_id, log, seq, hash, at)
              SELECT x.tenant_id, x.log, x.seq, x.hash, x.at FROM x WHERE x.was_seq = 0
              ON CONFLICT ON CONSTRAINT mcp_audit_heads_pkey DO NOTHING
              RETURNING tenant_id, log)
          SELECT m.tenant_id::pg_catalog.text, m.log FROM moved m
          UNION ALL SELECT a.tenant_id::pg_catalog.text, a.log FROM added a",
    args: &[JSONB],
    writes: true,
};

/// The last link of one chain, and its row's time (µs since 2000).
#[derive(Clone, PartialEq, Eq)]
struct Head {
    seq: i64,
    hash: Vec<u8>,
    at: Option<i64>,
}

impl Head {
    const GENESIS: Head = Head {
        seq: 0,
        hash: Vec::new(),
        at: None,
    };

    /// A head as read; None when there is none, or its hash is not 32 bytes (only
    /// an edit makes one: it is no link to go on from).
    fn read(seq: Option<i64>, hash: Option<Vec<u8>>, at: Option<i64>) -> Option<Head> {
        let hash = hash.filter(|h| h.len() == 32)?;
        Some(Head {
            seq: seq.filter(|s| *s > 0)?,
            hash,
            at,
        })
    }

    fn hash(&self) -> &[u8] {
        if self.seq == 0 {
            &GENESIS
        } else {
            &self.hash
        }
    }

    /// The next row's seq (an edit can put a head at the highest there is).
    fn next(&self) -> i64 {
        self.seq.checked_add(1).unwrap_or_else(|| {
            pgrx::error!("mcp_auth ledger: an audit chain is at the highest seq there is")
        })
    }

    /// Appends a row with `fields` (its seq is `self.seq + 1`, already among them)
    /// at time `at`; adds its prev_hash and hash to `links`.
    fn append(&mut self, fields: &[Option<&str>], at: i64, links: &mut Vec<u8>) {
        let seq = self.next();
        let hash = audit_chain::link(self.hash(), fields.iter().copied());
        links.extend_from_slice(self.hash());
        links.extend_from_slice(&hash);
        self.seq = seq;
        self.hash.clear();
        self.hash.extend_from_slice(&hash);
        self.at = Some(at);
    }

    fn json(&self, tenant: &str, log: &str) -> Value {
        json!({"tenant_id": tenant, "log": log, "seq": self.seq,
               "hash": hex::encode(self.hash()), "at": self.at.unwrap_or(0)})
    }
}

/// A tenant's two chains.
#[derive(Clone, PartialEq, Eq)]
struct Chains {
    usage: Head,
    activity: Head,
}

impl Chains {
    const LOGS: [&str; 2] = ["usage", "activity"];
    const NONE: Chains = Chains {
        usage: Head::GENESIS,
        activity: Head::GENESIS,
    };

    fn log(&self, log: &str) -> &Head {
        if log == "usage" {
            &self.usage
        } else {
            &self.activity
        }
    }

    fn log_mut(&mut self, log: &str) -> &mut Head {
        if log == "usage" {
            &mut self.usage
        } else {
            &mut self.activity
        }
    }
}

/// A tenant's row of `TABLE`.
struct TableRow {
    activity_on: bool,
    /// As they are in the table (GENESIS for no row), for compare-and-set.
    heads: Chains,
    /// Whether a head is there but no link to go on from (an edit).
    unusable: bool,
    /// Whether the usage head is there.
    has_usage: bool,
}

/// A tenant's chains: where they are, and where the heads table has them as the
/// writer last read or wrote it.
#[derive(Clone)]
pub struct Tenant {
    truth: Chains,
    table: Chains,
}

/// What the writer knows of the chains it has written since it started.
#[derive(Default)]
pub struct Known {
    /// Whether the recorded heads were all up to date when this writer started (the
    /// one before left with them recorded): a tenant it has not seen yet is then
    /// where the table has it, with no search of the logs.
    recorded_at_start: bool,
    committed: HashMap<String, Tenant>,
    /// Moved in the round's transaction, by statements that stood.
    pending: HashMap<String, Tenant>,
    /// Tenants whose chains are ahead of the table.
    behind: HashSet<String>,
    /// Heads the round wrote to the table (known to be there once it commits).
    wrote: Vec<(String, String)>,
    /// Tenants whose heads it tried to write but could not (someone else wrote
    /// there, or the statement raised): forgotten, and read anew when next seen.
    missed: HashSet<String>,
    /// Whether it ever found a head in the table that it had not written.
    foreign: bool,
    /// Whether every recorded head is known to be up to date: from the start when
    /// the writer before left them so, else once `catch_up` has moved them all.
    caught_up: bool,
    /// `catch_up` ran in the round's transaction.
    caught_up_now: bool,
    written: Option<Instant>,
}

impl Known {
    pub fn new(recorded_at_start: bool) -> Known {
        Known {
            recorded_at_start,
            caught_up: recorded_at_start,
            ..Default::default()
        }
    }

    fn current(&self, tenant: &str) -> Option<&Tenant> {
        self.pending
            .get(tenant)
            .or_else(|| self.committed.get(tenant))
    }

    /// Whether the table should be brought up to date in this round: a sync entry
    /// asked, the writer is about to leave, or it is `HEADS_EVERY` behind.
    pub fn due(&self, asked: bool) -> bool {
        let behind = !self.behind.is_empty() || self.pending.values().any(|t| t.truth != t.table);
        behind && (asked || self.written.is_none_or(|w| w.elapsed() >= HEADS_EVERY))
    }

    /// Writes the heads the table is behind on, in the round's transaction (when the
    /// statement raises, they are written in a later round).
    pub fn write(&mut self) {
        let tenants: HashSet<&String> = self.behind.iter().chain(self.pending.keys()).collect();
        let heads: Vec<(&String, &Tenant)> = tenants
            .into_iter()
            .filter_map(|t| Some((t, self.current(t)?)))
            .filter(|(_, t)| t.truth != t.table)
            .collect();
        let mut tried = Vec::new();
        let mut wrote = Vec::new();
        if let Err(e) = crate::subxact::attempt(|| (tried, wrote) = write(heads)) {
            pgrx::warning!(
                "mcp_auth ledger: the audit chains' heads could not be recorded: {}",
                e.message
            );
        }
        // A head not written (someone else wrote there, or the statement raised):
        // its tenant is read anew when next seen.
        let written: HashSet<&(String, String)> = wrote.iter().collect();
        self.missed = tried
            .iter()
            .filter(|head| !written.contains(head))
            .map(|(tenant, _)| tenant.clone())
            .collect();
        self.wrote = wrote;
        self.written = Some(Instant::now());
    }

    /// Takes what a statement that stood moved.
    pub fn moved(&mut self, moved: Moved) {
        self.pending.extend(moved.chains);
        self.foreign |= moved.foreign;
    }

    /// After the round's transaction committed: what it moved is where the chains
    /// are, and what it wrote is in the table.
    pub fn committed(&mut self) {
        self.caught_up |= std::mem::take(&mut self.caught_up_now);
        for (tenant, t) in self.pending.drain() {
            if t.truth == t.table {
                self.behind.remove(&tenant);
            } else {
                self.behind.insert(tenant.clone());
            }
            self.committed.insert(tenant, t);
        }
        for (tenant, log) in std::mem::take(&mut self.wrote) {
            if let Some(t) = self.committed.get_mut(&tenant) {
                *t.table.log_mut(&log) = t.truth.log(&log).clone();
                if t.truth == t.table {
                    self.behind.remove(&tenant);
                }
            }
        }
        self.foreign |= !self.missed.is_empty();
        for tenant in std::mem::take(&mut self.missed) {
            self.committed.remove(&tenant);
            self.behind.remove(&tenant);
        }
    }

    /// Whether every head this writer moved is recorded in the table, and it found
    /// none there that someone else wrote.
    pub fn all_recorded(&self) -> bool {
        self.caught_up && self.behind.is_empty() && self.pending.is_empty() && !self.foreign
    }

    /// Whether the recorded heads of tenants this writer has not seen may be behind
    /// (a writer before it ended without recording its own).
    pub fn must_catch_up(&self) -> bool {
        !self.caught_up
    }

    /// Moves every recorded head that is behind to where its chain has come
    /// (`CATCH_UP`), in the round's transaction: after a writer that ended without
    /// recording its heads, before this one may say they are all recorded.
    pub fn catch_up(&mut self) {
        match crate::subxact::attempt(|| spi::run(&CATCH_UP, &[], |_| ())) {
            Ok(()) => self.caught_up_now = true,
            Err(e) => pgrx::warning!(
                "mcp_auth ledger: the audit chains' recorded heads could not be brought up to date: {}",
                e.message
            ),
        }
    }

    /// Forgets what the round moved (its transaction did not commit).
    pub fn aborted(&mut self) {
        self.caught_up_now = false;
        self.pending.clear();
        self.wrote.clear();
        self.missed.clear();
    }
}

/// Heads by tenant and log.
type Heads = Vec<(String, String)>;

/// Writes the heads of `tenants` that are ahead of the table (`WRITE`); returns
/// those it tried and those it wrote.
fn write<'a>(tenants: impl IntoIterator<Item = (&'a String, &'a Tenant)>) -> (Heads, Heads) {
    let mut tried = Vec::new();
    let heads: Vec<Value> = tenants
        .into_iter()
        .flat_map(|(tenant, t)| {
            Chains::LOGS.into_iter().filter_map(move |log| {
                let (head, was) = (t.truth.log(log), t.table.log(log));
                (head != was).then_some((tenant, log, head, was))
            })
        })
        .map(|(tenant, log, head, was)| {
            tried.push((tenant.clone(), log.to_string()));
            let mut row = head.json(tenant, log);
            row["was_seq"] = was.seq.into();
            row["was_hash"] = hex::encode(was.hash()).into();
            row
        })
        .collect();
    if heads.is_empty() {
        return (tried, Vec::new());
    }
    let mut wrote = Vec::new();
    spi::run(&WRITE, &[pgrx::JsonB(Value::Array(heads)).into()], |rows| {
        wrote = rows
            .filter_map(|r| {
                Some((
                    r.get::<String>(1).ok().flatten()?,
                    r.get::<String>(2).ok().flatten()?,
                ))
            })
            .collect();
    });
    (tried, wrote)
}

type PgFn = unsafe fn(pg_sys::FunctionCallInfo) -> pg_sys::Datum;

/// Calls a built-in input function on `text` and the matching output function on
/// the value: the text the stored column prints. Raises what the input function
/// raises (the entry then fails alone, as its cast in the statement would).
fn through(input: PgFn, output: PgFn, text: &str) -> String {
    let c = CString::new(text)
        .unwrap_or_else(|_| pgrx::error!("mcp_auth ledger: a value holds a NUL byte"));
    unsafe {
        // Input functions take (cstring, typioparam, typmod); those used here read only the first.
        let value = pgrx::direct_function_call_as_datum(
            input,
            &[
                Some(pg_sys::Datum::from(c.as_ptr())),
                Some(pg_sys::Datum::from(0u32)),
                Some(pg_sys::Datum::from(-1i32)),
            ],
        );
        let printed = pgrx::direct_function_call_as_datum(output, &[value])
            .expect("an output function returns a cstring");
        CStr::from_ptr(printed.cast_mut_ptr::<std::ffi::c_char>())
            .to_string_lossy()
            .into_owned()
    }
}

/// What `x->>'field'` gives for a JSON value: NULL for null (or no field), a
/// string's own text, the printed value otherwise.
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        // An integer prints as numeric prints it; anything else through numeric.
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Value::Number(n) => Some(through(
            pg_sys::numeric_in,
            pg_sys::numeric_out,
            &n.to_string(),
        )),
        other => Some(through(
            pg_sys::jsonb_in,
            pg_sys::jsonb_out,
            &other.to_string(),
        )),
    }
}

/// A uuid as uuid_out prints it; the entries' own (lower-case, hyphenated) as they are.
fn uuid(v: &Value) -> Option<String> {
    let text = text_of(v)?;
    let canonical = text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        });
    Some(if canonical {
        text
    } else {
        through(pg_sys::uuid_in, pg_sys::uuid_out, &text)
    })
}

/// A transaction id as xid8out prints it (a plain decimal as it is).
fn xid8(v: &Value) -> Option<String> {
    let text = text_of(v)?;
    Some(match text.parse::<u64>() {
        Ok(n) if n.to_string() == text => text,
        _ => through(pg_sys::xid8in, pg_sys::xid8out, &text),
    })
}

/// `text_of` through a type's input and output functions (`(x->>'field')::type`).
fn typed(v: &Value, input: PgFn, output: PgFn) -> Option<String> {
    text_of(v).map(|t| through(input, output, &t))
}

/// A JSON value as jsonb_out prints it; None for null (`NULLIF(x->'f', 'null')`).
fn jsonb(v: &Value) -> Option<String> {
    (!v.is_null()).then(|| through(pg_sys::jsonb_in, pg_sys::jsonb_out, &v.to_string()))
}

/// A string as jsonb prints it: serde_json escapes exactly as PostgreSQL's
/// escape_json does (the two-letter escapes, other control characters as \u00xx in
/// lower case, nothing else).
fn json_string(s: Option<&str>) -> String {
    s.map_or_else(|| "null".into(), |s| Value::from(s).to_string())
}

/// The activity row's metadata as jsonb_out prints what the statement's
/// jsonb_build_object makes (keys in jsonb's order: by length, then bytes).
struct Metadata<'a> {
    tool: Option<&'a str>,
    error: Option<&'a str>,
    key_id: Option<&'a str>,
    success: bool,
    key_name: Option<&'a str>,
    arguments: Option<&'a str>,
    key_prefix: Option<&'a str>,
    usage_log_id: Option<&'a str>,
    response_time_ms: Option<&'a str>,
}

impl Metadata<'_> {
    fn print(&self) -> String {
        format!(
            "{{\"tool\": {}, \"error\": {}, \"key_id\": {}, \"success\": {}, \"key_name\": {}, \
             \"arguments\": {}, \"key_prefix\": {}, \"usage_log_id\": {}, \"response_time_ms\": {}}}",
            json_string(self.tool),
            json_string(self.error),
            json_string(self.key_id),
            self.success,
            json_string(self.key_name),
            self.arguments.unwrap_or("null"),
            json_string(self.key_prefix),
            json_string(self.usage_log_id),
            self.response_time_ms.unwrap_or("null"),
        )
    }
}

/// The time field: µs since 1970, as the fields print a finite time.
fn time_field(at: i64) -> String {
    (at + PG_EPOCH_US).to_string()
}

/// Reads the table's heads of `tenants`, and whether each logs activity.
fn table(tenants: &[String]) -> HashMap<String, TableRow> {
    let ids = pgrx::JsonB(Value::from(tenants.to_vec()));
    let mut found = HashMap::new();
    spi::run(&TABLE, &[ids.into()], |rows| {
        for row in rows {
            let get_i64 = |i| row.get::<i64>(i).ok().flatten();
            let get_bytes = |i| row.get::<Vec<u8>>(i).ok().flatten();
            let Some(id) = row.get::<String>(1).ok().flatten() else {
                continue;
            };
            let activity_on = row.get::<bool>(2).ok().flatten().unwrap_or(true);
            let (usage, activity) = (
                (get_i64(3), get_bytes(4), get_i64(5)),
                (get_i64(6), get_bytes(7), get_i64(8)),
            );
            let raw =
                |(seq, hash, at): (Option<i64>, Option<Vec<u8>>, Option<i64>)| match (seq, hash) {
                    (Some(seq), Some(hash)) => Head { seq, hash, at },
                    _ => Head::GENESIS,
                };
            let unusable = [&usage, &activity].into_iter().any(|(seq, hash, at)| {
                seq.is_some() && Head::read(*seq, hash.clone(), *at).is_none()
            });
            let has_usage = usage.0.is_some();
            let heads = Chains {
                usage: raw(usage),
                activity: raw(activity),
            };
            found.insert(
                id,
                TableRow {
                    activity_on,
                    heads,
                    unusable,
                    has_usage,
                },
            );
        }
    });
    found
}

/// The chains of `tenants` when the writer does not know them, or the table is not
/// as it last saw it (someone else wrote there, or it is a new table): how far
/// they have come by the table's heads, the rows written after them and the
/// anchors of purges (`REACHED`). A chain with none of these has no row yet.
fn recover(tenants: &[&String]) -> HashMap<String, Chains> {
    let mut found: HashMap<String, Chains> = tenants
        .iter()
        .map(|t| ((*t).clone(), Chains::NONE))
        .collect();
    if tenants.is_empty() {
        return found;
    }
    let ids = pgrx::JsonB(Value::from(
        tenants.iter().map(|t| (*t).clone()).collect::<Vec<_>>(),
    ));
    spi::run(&REACHED, &[ids.into()], |rows| {
        for row in rows {
            let (Some(tenant), Some(log)) = (
                row.get::<String>(1).ok().flatten(),
                row.get::<String>(2).ok().flatten(),
            ) else {
                continue;
            };
            let reached = Head::read(
                row.get::<i64>(3).ok().flatten(),
                row.get::<Vec<u8>>(4).ok().flatten(),
                row.get::<i64>(5).ok().flatten(),
            );
            if let (Some(chains), Some(reached)) = (found.get_mut(&tenant), reached) {
                if Chains::LOGS.contains(&log.as_str()) {
                    *chains.log_mut(&log) = reached;
                }
            }
        }
    });
    found
}

/// Those of `tenants` that have chained rows (`CHAINED`).
fn with_chained_rows(tenants: &[&String]) -> HashSet<String> {
    if tenants.is_empty() {
        return HashSet::new();
    }
    let ids = pgrx::JsonB(Value::from(
        tenants.iter().map(|t| (*t).clone()).collect::<Vec<_>>(),
    ));
    let mut found = HashSet::new();
    spi::run(&CHAINED, &[ids.into()], |rows| {
        found = rows
            .filter_map(|r| r.get::<String>(1).ok().flatten())
            .collect();
    });
    found
}

/// What the statement stores of the links, for the n-th entry (from 1): `numbers`
/// holds its seq, created_at (µs since 2000) and activity row's seq (0: no activity
/// row) at 3n-2 to 3n; `hashes` its prev_hash, hash, and the activity row's
/// prev_hash and hash, 32 bytes each from 128(n-1). (Arrays, not fields of the
/// entries' JSON: the writer's statement reads them without parsing text.) The
/// activity row's id is the entry's activity_id.
#[derive(Default)]
pub struct Links {
    pub numbers: Vec<i64>,
    pub hashes: Vec<u8>,
}

/// Where a statement moved its tenants' chains.
pub struct Moved {
    chains: HashMap<String, Tenant>,
    /// Whether it found a head in the table that the writer had not written.
    foreign: bool,
}

/// Links `entries` (usage entries, in queue order) into their chains. Returns the
/// tenants' chains as they are after them (their heads go to the table with
/// `write_new`, new chains, and `Known::write`) and the links to store.
pub fn link(entries: &mut [Value], known: &Known) -> (Moved, Links) {
    let mut tenants: Vec<String> = entries
        .iter()
        .filter_map(|e| uuid(&e["tenant_id"]))
        .collect();
    tenants.sort();
    tenants.dedup();
    let rows = table(&tenants);
    let in_table = |tenant: &String| rows.get(tenant).map_or(Chains::NONE, |r| r.heads.clone());
    // The logs are searched (`recover`) only for a tenant whose recorded heads may
    // be behind: one this writer knows but finds not as it left it (an edit, a
    // restore), or one it has not seen since a writer ended without recording its
    // heads (or the server started). A tenant with no recorded head has no chain
    // (its first rows record one in their own transaction) unless an edit removed
    // it, which its usage rows show.
    let unusable = |t: &String| rows.get(t).is_some_and(|r| r.unusable);
    let has_usage = |t: &String| rows.get(t).is_some_and(|r| r.has_usage);
    let unrecorded: Vec<&String> = tenants
        .iter()
        .filter(|t| known.current(t).is_none() && !has_usage(t))
        .collect();
    let chained = with_chained_rows(&unrecorded);
    let cold: Vec<&String> = tenants
        .iter()
        .filter(|t| {
            unusable(t)
                || match known.current(t) {
                    Some(k) => k.table != in_table(t),
                    None if !has_usage(t) => chained.contains(*t),
                    None => !known.recorded_at_start,
                }
        })
        .collect();
    // (A head it knows, found otherwise, was written by someone else.)
    let foreign = cold.iter().any(|t| known.current(t).is_some());
    let mut recovered = recover(&cold);
    let mut chains: HashMap<String, Tenant> = tenants
        .iter()
        .map(|tenant| {
            let truth = match (recovered.remove(tenant), known.current(tenant)) {
                (Some(truth), _) => truth,
                (None, Some(k)) => k.truth.clone(),
                (None, None) => in_table(tenant),
            };
            let table = in_table(tenant);
            (tenant.clone(), Tenant { truth, table })
        })
        .collect();
    let mut links = Links::default();
    for entry in entries.iter_mut() {
        let Some(tenant_id) = uuid(&entry["tenant_id"]) else {
            pgrx::error!("mcp_auth ledger: a usage entry names no tenant");
        };
        let Some(Tenant { truth: t, .. }) = chains.get_mut(&tenant_id) else {
            pgrx::error!("mcp_auth ledger: the heads of tenant {tenant_id} were not read");
        };
        let activity_on = rows.get(&tenant_id).is_none_or(|r| r.activity_on);
        let at = entry["at"]
            .as_i64()
            .unwrap_or_else(|| pgrx::error!("mcp_auth ledger: a usage entry has no time"));
        let created_at = t.usage.at.map_or(at, |before| before.max(at));
        let id = uuid(&entry["id"]);
        let key_id = uuid(&entry["key_id"]);
        let tool = text_of(&entry["tool"]);
        let arguments = jsonb(&entry["arguments"]);
        let success = typed(&entry["success"], pg_sys::boolin, pg_sys::boolout);
        let error = text_of(&entry["error"]);
        let (key_name, key_prefix) = (text_of(&entry["key_name"]), text_of(&entry["key_prefix"]));
        let response_time_ms = match &entry["response_time_ms"] {
            Value::Number(n) if n.as_i64().is_some_and(|n| i32::try_from(n).is_ok()) => {
                Some(n.to_string())
            }
            other => typed(other, pg_sys::int4in, pg_sys::int4out),
        };
        let (ip, user_agent) = (
            typed(&entry["ip"], pg_sys::inet_in, pg_sys::inet_out),
            text_of(&entry["user_agent"]),
        );
        let (xact_id, time) = (xid8(&entry["xact_id"]), time_field(created_at));
        let seq = t.usage.next();
        let seq_text = seq.to_string();
        let fields = [
            Some(tenant_id.as_str()),
            Some(&seq_text),
            id.as_deref(),
            key_id.as_deref(),
            tool.as_deref(),
            arguments.as_deref(),
            success.as_deref(),
            error.as_deref(),
            response_time_ms.as_deref(),
            ip.as_deref(),
            user_agent.as_deref(),
            Some(&time),
            xact_id.as_deref(),
        ];
        t.usage.append(&fields, created_at, &mut links.hashes);
        links.numbers.extend([seq, created_at]);
        if !activity_on {
            links.numbers.push(0);
            links.hashes.extend_from_slice(&[0; 64]);
            continue;
        }
        let ok = success.as_deref() == Some("t");
        let tool_text = tool.as_deref().unwrap_or_default();
        let description = if ok {
            format!("Tool \"{tool_text}\" executed successfully")
        } else {
            let error = error.as_deref().unwrap_or_default();
            format!("Tool \"{tool_text}\" execution failed: {error}")
        };
        let metadata = Metadata {
            tool: tool.as_deref(),
            error: error.as_deref(),
            key_id: key_id.as_deref(),
            success: ok,
            key_name: key_name.as_deref(),
            arguments: arguments.as_deref(),
            key_prefix: key_prefix.as_deref(),
            usage_log_id: id.as_deref(),
            response_time_ms: response_time_ms.as_deref(),
        }
        .print();
        let activity_id = uuid::Uuid::new_v4().to_string();
        let seq = t.activity.next();
        let seq_text = seq.to_string();
        let fields = [
            Some(tenant_id.as_str()),
            Some(&seq_text),
            Some(&activity_id),
            None, // user_id
            Some("MCP Server"),
            Some(if ok { "mcp_execute" } else { "mcp_error" }),
            Some("mcp_tool"),
            tool.as_deref(),
            tool.as_deref(),
            Some(&description),
            Some(&metadata),
            Some(&time),
        ];
        t.activity.append(&fields, created_at, &mut links.hashes);
        links.numbers.push(seq);
        if let Some(object) = entry.as_object_mut() {
            object.insert("activity_id".into(), activity_id.into());
        }
    }
    (Moved { chains, foreign }, links)
}

/// Writes the heads of chains the table has none of yet (their first rows), in the
/// statement's subtransaction: the table is never without a chain the logs hold
/// (`recover` starts from it).
pub fn write_new(moved: &mut Moved) {
    let chains = &mut moved.chains;
    let new = chains.iter().filter(|(_, t)| {
        Chains::LOGS
            .iter()
            .any(|log| t.table.log(log).seq == 0 && t.truth.log(log).seq > 0)
    });
    for (tenant, log) in write(new).1 {
        if let Some(t) = chains.get_mut(&tenant) {
            *t.table.log_mut(&log) = t.truth.log(&log).clone();
        }
    }
}
