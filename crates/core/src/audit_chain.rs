//! The audit trail's hash chains: one definition of how an audit row is hashed and
//! of what makes a chain whole, shared by the ledger's writer (which links the
//! rows), `verify_mcp_audit` in SQL, and `mcp-auth audit verify` offline. The
//! offline verifier reads the same columns with the same calls (`Log::fields`) but
//! hashes and judges here, outside the database, so a database whose functions were
//! replaced cannot vouch for itself.
//!
//! Each tenant has a chain of its own in each log the extension writes (`Log`):
//! rows carry `seq` (1, 2, 3, ... with no gap), `prev_hash` (the previous row's
//! `hash`; 32 zero bytes before the first) and `hash` = SHA-256(prev_hash ‖ field₁ ‖
//! … ‖ fieldₙ), every field encoded as a 4-byte big-endian length and its UTF-8
//! text, or the 4 bytes FF FF FF FF for NULL. The fields, as PostgreSQL prints
//! them, are listed in `USAGE_FIELDS` and `ACTIVITY_FIELDS`.

use sha2::{Digest, Sha256};

/// A row's time as the fields print it: microseconds since 1970-01-01 UTC, so that
/// no DateStyle or TimeZone changes it; an infinite time prints as such.
/// (Its literals are typed: an untyped one would let an overload a superuser adds,
/// numeric_mul(numeric, text) say, win over the built-in.)
const TIME_FIELD: &str = "CASE WHEN pg_catalog.isfinite(created_at) \
     THEN pg_catalog.textin(pg_catalog.int8out(pg_catalog.int8(pg_catalog.numeric_mul(\
          pg_catalog.extract('epoch'::pg_catalog.text, created_at), '1000000'::pg_catalog.numeric)))) \
     ELSE pg_catalog.textin(pg_catalog.timestamptz_out(created_at)) END";

/// The fields of a usage row (`mcp_key_usage_logs`) that its hash covers, in order:
/// SQL expressions over its columns (also the names the ledger's writer gives its
/// values), each the text PostgreSQL's output function prints for it. Every call
/// names pg_catalog's function itself, with no cast and no operator: a cast or an
/// operator is looked up, and a superuser could add one that prints something else
/// for a chosen value. (`BUILTINS` lists the functions, which the verifiers check
/// are PostgreSQL's own.)
pub const USAGE_FIELDS: [&str; 13] = [
    "pg_catalog.textin(pg_catalog.uuid_out(tenant_id))",
    "pg_catalog.textin(pg_catalog.int8out(seq))",
    "pg_catalog.textin(pg_catalog.uuid_out(id))",
    "pg_catalog.textin(pg_catalog.uuid_out(key_id))",
    "tool_name",
    "pg_catalog.textin(pg_catalog.jsonb_out(tool_arguments))",
    "pg_catalog.textin(pg_catalog.boolout(success))",
    "error_message",
    "pg_catalog.textin(pg_catalog.int4out(response_time_ms))",
    "pg_catalog.textin(pg_catalog.inet_out(ip_address))",
    "user_agent",
    TIME_FIELD,
    "pg_catalog.textin(pg_catalog.xid8out(xact_id))",
];

/// The same for an activity row the extension writes (`activity_log`, action
/// `mcp_execute` or `mcp_error`).
pub const ACTIVITY_FIELDS: [&str; 12] = [
    "pg_catalog.textin(pg_catalog.uuid_out(tenant_id))",
    "pg_catalog.textin(pg_catalog.int8out(seq))",
    "pg_catalog.textin(pg_catalog.uuid_out(id))",
    "pg_catalog.textin(pg_catalog.uuid_out(user_id))",
    "user_name",
    "action",
    "entity_type",
    "entity_id",
    "entity_name",
    "description",
    "pg_catalog.textin(pg_catalog.jsonb_out(metadata))",
    TIME_FIELD,
];

/// The logs whose rows are chained: each tenant has one chain in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Log {
    /// `mcp_key_usage_logs`: every row.
    Usage,
    /// `activity_log`: the rows the ledger writes for MCP calls. The application's
    /// own rows (other actions) are not in the chain.
    Activity,
}

impl Log {
    pub const ALL: [Log; 2] = [Log::Usage, Log::Activity];

    /// The name the chain tables' `log` column gives it.
    pub fn name(self) -> &'static str {
        match self {
            Log::Usage => "usage",
            Log::Activity => "activity",
        }
    }

    pub fn parse(name: &str) -> Option<Log> {
        Log::ALL.into_iter().find(|l| l.name() == name)
    }

    /// The table its rows are in.
    pub fn table(self) -> &'static str {
        match self {
            Log::Usage => "mcp_key_usage_logs",
            Log::Activity => "activity_log",
        }
    }

    /// What a row's hash covers (`USAGE_FIELDS`, `ACTIVITY_FIELDS`).
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Log::Usage => &USAGE_FIELDS,
            Log::Activity => &ACTIVITY_FIELDS,
        }
    }

    /// The columns the fields and the links are read from, with the OID of the
    /// built-in type each must have: a column whose type a superuser changed (to
    /// one with a cast or output function of their own) would print other text.
    pub fn columns(self) -> &'static [(&'static str, u32)] {
        const UUID: u32 = 2950;
        const INT8: u32 = 20;
        const INT4: u32 = 23;
        const TEXT: u32 = 25;
        const JSONB: u32 = 3802;
        const BOOL: u32 = 16;
        const INET: u32 = 869;
        const TIMESTAMPTZ: u32 = 1184;
        const XID8: u32 = 5069;
        const BYTEA: u32 = 17;
        match self {
            Log::Usage => &[
                ("tenant_id", UUID),
                ("seq", INT8),
                ("id", UUID),
                ("key_id", UUID),
                ("tool_name", TEXT),
                ("tool_arguments", JSONB),
                ("success", BOOL),
                ("error_message", TEXT),
                ("response_time_ms", INT4),
                ("ip_address", INET),
                ("user_agent", TEXT),
                ("created_at", TIMESTAMPTZ),
                ("xact_id", XID8),
                ("prev_hash", BYTEA),
                ("hash", BYTEA),
            ],
            Log::Activity => &[
                ("tenant_id", UUID),
                ("seq", INT8),
                ("id", UUID),
                ("user_id", UUID),
                ("user_name", TEXT),
                ("action", TEXT),
                ("entity_type", TEXT),
                ("entity_id", TEXT),
                ("entity_name", TEXT),
                ("description", TEXT),
                ("metadata", JSONB),
                ("created_at", TIMESTAMPTZ),
                ("prev_hash", BYTEA),
                ("hash", BYTEA),
            ],
        }
    }

    /// The fields as one SQL array expression (`ARRAY[...]::text[]`).
    pub fn fields_sql(self) -> String {
        format!("ARRAY[{}]::text[]", self.fields().join(", "))
    }

    /// What a walk reads of a row: its fields when it is in the chain; only its
    /// time when it is not (that is all a walk judges it by, and a row someone
    /// else added may print to any size).
    fn walked_fields_sql(self) -> String {
        let time_only: Vec<&str> = (0..self.fields().len())
            .map(|i| if i == TIME { TIME_FIELD } else { "NULL" })
            .collect();
        format!(
            "CASE WHEN seq IS NULL THEN ARRAY[{}]::text[] ELSE {} END",
            time_only.join(", "),
            self.fields_sql()
        )
    }

    /// Which of the table's rows a walk takes: the chained ones, and those outside
    /// the chain that it would hold had the ledger written them (so that a forged
    /// one is found). In activity_log, the application's own rows are neither.
    pub fn walked(self) -> &'static str {
        match self {
            Log::Usage => "true",
            Log::Activity => {
                "(seq IS NOT NULL OR (action IN ('mcp_execute', 'mcp_error') AND entity_type = 'mcp_tool'))"
            }
        }
    }

    /// The query of a walk over one tenant's rows, in the extension's schema `s`:
    /// seq, prev_hash, hash and the fields, tenant as $1, in `ORDER`; `range` adds
    /// created_at bounds $2 and $3 (either NULL for none).
    pub fn walk_sql(self, s: &str, range: bool) -> String {
        let bounds = if range {
            " AND ($2 IS NULL OR created_at >= $2) AND ($3 IS NULL OR created_at < $3)"
        } else {
            ""
        };
        format!(
            "SELECT seq, prev_hash, hash, {} FROM {s}.{} WHERE tenant_id = $1 AND {}{bounds} ORDER BY {ORDER}",
            self.walked_fields_sql(),
            self.table(),
            self.walked()
        )
    }
}

/// Index of the time in both logs' fields.
const TIME: usize = 11;

/// The functions the fields call, with the C symbol each is in PostgreSQL: a
/// superuser who replaced one (CREATE OR REPLACE FUNCTION pg_catalog....) could
/// make it print a forged row as the original. `BUILTINS_CHECK` finds any that is
/// not PostgreSQL's own.
pub const BUILTINS: [(&str, &str); 24] = [
    ("pg_catalog.textin(cstring)", "textin"),
    ("pg_catalog.uuid_out(uuid)", "uuid_out"),
    ("pg_catalog.int8out(bigint)", "int8out"),
    ("pg_catalog.jsonb_out(jsonb)", "jsonb_out"),
    ("pg_catalog.boolout(boolean)", "boolout"),
    ("pg_catalog.int4out(integer)", "int4out"),
    ("pg_catalog.inet_out(inet)", "inet_out"),
    (
        "pg_catalog.isfinite(timestamp with time zone)",
        "timestamp_finite",
    ),
    ("pg_catalog.int8(numeric)", "numeric_int8"),
    ("pg_catalog.numeric_mul(numeric, numeric)", "numeric_mul"),
    (
        "pg_catalog.extract(text, timestamp with time zone)",
        "extract_timestamptz",
    ),
    (
        "pg_catalog.timestamptz_out(timestamp with time zone)",
        "timestamptz_out",
    ),
    ("pg_catalog.xid8out(xid8)", "xid8out"),
    // The walk's own comparisons (tenant_id = $1, the log, the MCP actions), and
    // how the extension's schema is named.
    ("pg_catalog.uuid_eq(uuid, uuid)", "uuid_eq"),
    ("pg_catalog.texteq(text, text)", "texteq"),
    ("pg_catalog.quote_ident(text)", "quote_ident"),
    ("pg_catalog.text(name)", "name_text"),
    // The comparisons of `builtins_check_sql` itself: replaced by a SQL function
    // the planner inlines, one would blind it.
    ("pg_catalog.oideq(oid, oid)", "oideq"),
    ("pg_catalog.oidne(oid, oid)", "oidne"),
    ("pg_catalog.oidge(oid, oid)", "oidge"),
    ("pg_catalog.textne(text, text)", "textne"),
    ("pg_catalog.nameeq(name, name)", "nameeq"),
    ("pg_catalog.chareq(\"char\", \"char\")", "chareq"),
    ("pg_catalog.charne(\"char\", \"char\")", "charne"),
];

/// An anchor's time (`at`, of table alias `a`) in µs since 1970, as the fields print it.
pub const ANCHOR_TIME: &str = "pg_catalog.int8(pg_catalog.numeric_mul(\
     pg_catalog.extract('epoch'::pg_catalog.text, a.at), '1000000'::pg_catalog.numeric))";

/// When the chains began, in µs as the fields print a time: the upgrade to 2.4.0
/// records it (rows outside the chain from before it are the older rows); no row
/// in a database installed with the chains, where every row the ledger wrote is in
/// one. In the extension's schema `s`.
pub fn began_sql(s: &str) -> String {
    format!(
        "SELECT pg_catalog.int8(pg_catalog.numeric_mul(
                    pg_catalog.extract('epoch'::pg_catalog.text, a.began), '1000000'::pg_catalog.numeric))
           FROM {s}.mcp_audit_upgraded a"
    )
}

/// The tenants to verify when none is named, in the extension's schema `s`: those
/// with a head, an anchor or a checkpoint (even when their rows are gone), and those
/// with a row a walk takes in either log (even one with no chain yet: a row there
/// outside the chain was inserted).
pub fn tenants_sql(s: &str) -> String {
    format!(
        "SELECT tenant_id FROM {s}.mcp_audit_heads UNION SELECT tenant_id FROM {s}.mcp_audit_anchors
         UNION SELECT tenant_id FROM {s}.mcp_audit_checkpoints
         UNION SELECT DISTINCT tenant_id FROM {s}.{} WHERE {}
         UNION SELECT DISTINCT tenant_id FROM {s}.{} WHERE {} ORDER BY 1",
        Log::Usage.table(),
        Log::Usage.walked(),
        Log::Activity.table(),
        Log::Activity.walked()
    )
}

/// A query returning what the chain would be read through that is not PostgreSQL's
/// own, one row each, none when all is: a function of `BUILTINS` replaced (not of
/// the internal language, or not its own C symbol, or given a planner support
/// function); a built-in type whose input, output, send or receive function was
/// set to one of someone's (ALTER TYPE text SET (SEND = ...) would let the
/// offline verifier, which reads binary, receive the original of an edited field);
/// any function or operator a superuser added to pg_catalog (an overload
/// there can win over a built-in for a call whose types are not an exact match,
/// `quote_ident(name)` or `numeric_mul(numeric, text)` say; procedural languages'
/// handlers aside); a chained column of the logs in the extension's schema `s` whose
/// type was changed (`Log::columns`); a log that is not the extension's partitioned
/// table in the extension's schema (a view, a table with rules, or a look-alike made
/// a member elsewhere, in its place); or a partition that is not a table (a foreign
/// table would print what it likes). Every comparison here is between values of one
/// type, so that no operator a superuser added is chosen; a row counts even when its
/// message is NULL (a `format` overload could blank it).
pub fn builtins_check_sql(s: &str) -> String {
    const OID: &str = "pg_catalog.oid";
    let pairs: Vec<String> = BUILTINS
        .iter()
        .map(|(f, src)| format!("('{f}', '{src}')"))
        .collect();
    let quoted = s.replace('\'', "''");
    let columns: Vec<String> = Log::ALL
        .iter()
        .flat_map(|log| {
            let quoted = quoted.clone();
            log.columns().iter().map(move |(column, oid)| {
                format!(
                    "('{quoted}.{}'::pg_catalog.regclass, '{column}'::pg_catalog.name, '{oid}'::{OID})",
                    log.table()
                )
            })
        })
        .collect();
    let logs: Vec<String> = Log::ALL
        .iter()
        .map(|log| format!("('{quoted}.{}'::pg_catalog.regclass)", log.table()))
        .collect();
    format!(
        "SELECT b.f FROM (VALUES {pairs}) b(f, src)
           LEFT JOIN pg_catalog.pg_proc p ON p.oid = b.f::pg_catalog.regprocedure::{OID}
          WHERE p.oid IS NULL OR p.prolang <> '12'::{OID} OR p.prosrc <> b.src OR p.oid >= '16384'::{OID}
                OR p.prosupport::{OID} <> '0'::{OID}
         UNION ALL
         SELECT pg_catalog.format('the input or output of type %s', t.oid::pg_catalog.regtype)
           FROM pg_catalog.pg_type t
          WHERE NOT t.oid >= '16384'::{OID}
            AND (t.typinput::{OID} >= '16384'::{OID} OR t.typoutput::{OID} >= '16384'::{OID}
                 OR t.typreceive::{OID} >= '16384'::{OID} OR t.typsend::{OID} >= '16384'::{OID})
         UNION ALL
         SELECT pg_catalog.format('function %s in pg_catalog', p.oid::pg_catalog.regprocedure)
           FROM pg_catalog.pg_proc p
          WHERE p.pronamespace = '11'::{OID} AND p.oid >= '16384'::{OID}
            AND p.prorettype <> '2280'::{OID} -- language_handler
            AND NOT EXISTS (SELECT FROM pg_catalog.pg_language g
                             WHERE g.lanvalidator = p.oid OR g.laninline = p.oid)
         UNION ALL
         SELECT pg_catalog.format('operator %s in pg_catalog', o.oid::pg_catalog.regoperator)
           FROM pg_catalog.pg_operator o
          WHERE o.oprnamespace = '11'::{OID} AND o.oid >= '16384'::{OID}
         UNION ALL
         SELECT pg_catalog.format('column %s.%s of type %s', c.t, c.col,
                                  COALESCE(pg_catalog.format_type(a.atttypid, NULL), 'none'))
           FROM (VALUES {columns}) c(t, col, ty)
           LEFT JOIN pg_catalog.pg_attribute a
                  ON a.attrelid = c.t::{OID} AND a.attname = c.col AND NOT a.attisdropped
          WHERE a.atttypid IS NULL OR a.atttypid <> c.ty
         UNION ALL
         SELECT pg_catalog.format('%s is not mcp_auth''s partitioned table', l.t)
           FROM (VALUES {logs}) l(t)
          WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_class c
                              JOIN pg_catalog.pg_depend d ON d.classid = '1259'::{OID} -- pg_class
                                   AND d.objid = c.oid AND d.deptype = 'e'::pg_catalog.\"char\"
                              JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
                                   AND e.extname = 'mcp_auth'::pg_catalog.name
                             WHERE c.oid = l.t::{OID} AND c.relnamespace = e.extnamespace
                               AND c.relkind = 'p'::pg_catalog.\"char\" AND NOT c.relhasrules)
         UNION ALL
         SELECT pg_catalog.format('partition %s is not a table', p.rel)
           FROM (WITH RECURSIVE tree(rel) AS (
                     SELECT i.inhrelid FROM (VALUES {logs}) l(t)
                       JOIN pg_catalog.pg_inherits i ON i.inhparent = l.t::{OID}
                     UNION ALL SELECT i.inhrelid FROM pg_catalog.pg_inherits i
                                 JOIN tree ON i.inhparent = tree.rel)
                 SELECT tree.rel::pg_catalog.regclass AS rel FROM tree
                   JOIN pg_catalog.pg_class c ON c.oid = tree.rel
                  WHERE (c.relkind <> 'r'::pg_catalog.\"char\" AND c.relkind <> 'p'::pg_catalog.\"char\")
                     OR c.relhasrules) p",
        pairs = pairs.join(", "),
        columns = columns.join(", "),
        logs = logs.join(", "),
    )
}

/// The order a walk takes a tenant's rows in: by time, then seq. Along a chain the
/// time never goes back (the writer keeps it so), so this is seq order, read through
/// each partition's (tenant_id, created_at) index without sorting the tenant's rows;
/// rows outside the chain (from before it, or inserted) fall where their time puts them.
pub const ORDER: &str = "created_at, seq NULLS FIRST";

pub type Hash = [u8; 32];

/// The `prev_hash` of a chain's first row.
pub const GENESIS: Hash = [0; 32];

/// The hash of a row whose fields are `fields` (in its log's order) after `prev`.
pub fn link<'a>(prev: &[u8], fields: impl IntoIterator<Item = Option<&'a str>>) -> Hash {
    let mut h = Sha256::new();
    h.update(prev);
    for field in fields {
        match field {
            None => h.update([0xff; 4]),
            Some(text) => {
                h.update((text.len() as u32).to_be_bytes());
                h.update(text.as_bytes());
            }
        }
    }
    h.finalize().into()
}

/// Where a walk along a chain starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The chain's first row (seq 1 after `GENESIS`).
    Genesis,
    /// The last row a purge removed (its seq, hash and time in µs): the chain goes
    /// on at `seq + 1` after `hash`. A purge removes a prefix of every chain (all
    /// of a tenant's rows older than a time, in one statement), so no row at or
    /// before it may be left.
    Anchor { seq: i64, hash: Vec<u8>, at: i64 },
    /// A time range: its first row is taken as it is; the link into it is not checked.
    Range,
}

/// The first broken link found, with the sequence number where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub seq: i64,
    pub problem: String,
}

/// A walk along one tenant's rows, in `ORDER`.
#[derive(Debug)]
pub struct Walk {
    start: Start,
    /// When the chains began (µs), for a database upgraded from before them (the
    /// upgrade records it): rows outside the chain dated earlier are from before
    /// it. None for one installed with them, where no such row can be.
    began: Option<i64>,
    /// The next seq and prev_hash expected; None before the first row of a range.
    expected: Option<(i64, Vec<u8>)>,
    pub first: Option<i64>,
    pub last: Option<(i64, Vec<u8>)>,
    pub rows: i64,
    /// Rows written before the chain existed (no seq): outside it, not checked.
    pub unchained: i64,
}

/// A row's time from its fields (µs since 1970, or infinite).
fn time_of(fields: &[Option<&str>]) -> i64 {
    match fields.get(TIME).copied().flatten() {
        Some("infinity") => i64::MAX,
        Some(t) => t.parse().unwrap_or(i64::MIN),
        None => i64::MIN,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Walk {
    /// A walk from `start`; `began` is when the chains began, if the database was
    /// upgraded to them (`began_sql`).
    pub fn new(start: Start, began: Option<i64>) -> Walk {
        let expected = match &start {
            Start::Genesis => Some((1, GENESIS.to_vec())),
            Start::Anchor { seq, hash, .. } => Some((seq + 1, hash.clone())),
            Start::Range => None,
        };
        Walk {
            start,
            began,
            expected,
            first: None,
            last: None,
            rows: 0,
            unchained: 0,
        }
    }

    pub fn start(&self) -> &Start {
        &self.start
    }

    /// Takes the next row, in `ORDER`, with its fields in its log's order; the first
    /// broken link is an error, after which the walk is over.
    pub fn row(
        &mut self,
        seq: Option<i64>,
        prev_hash: Option<&[u8]>,
        hash: Option<&[u8]>,
        fields: &[Option<&str>],
    ) -> Result<(), Broken> {
        let Some(seq) = seq else {
            return self.outside(fields);
        };
        let broken = |problem: String| Err(Broken { seq, problem });
        let (Some(prev_hash), Some(hash)) = (prev_hash, hash) else {
            return broken(format!(
                "row {seq} has a sequence number but no hash: it was not written by the ledger"
            ));
        };
        if let Start::Anchor { seq: a, .. } = self.start {
            if seq <= a {
                return broken(format!(
                    "row {seq} is at or before the purge's anchor ({a}): a purge removes every row \
                     up to its anchor, so this one was put back, or the anchor forged"
                ));
            }
        }
        let (want_seq, want_prev) = self.expected.clone().unwrap_or((seq, prev_hash.to_vec()));
        if seq > want_seq {
            let what = if want_seq == seq - 1 {
                format!("row {want_seq} is missing")
            } else {
                format!("rows {want_seq} to {} are missing", seq - 1)
            };
            return broken(format!("{what} (deleted, or rows moved)"));
        }
        if seq < want_seq {
            return broken(format!(
                "row {seq} comes again after row {} (a row was inserted, or rows reordered)",
                want_seq - 1
            ));
        }
        let computed = link(prev_hash, fields.iter().copied());
        if computed[..] != *hash {
            return broken(format!(
                "row {seq} was changed after it was written: its hash does not match its fields"
            ));
        }
        if prev_hash != want_prev {
            return broken(format!(
                "row {seq} does not follow the row before it: its prev_hash is {} where that row's hash is {} \
                 (a row was inserted, replaced or moved)",
                hex(prev_hash),
                hex(&want_prev)
            ));
        }
        self.first.get_or_insert(seq);
        self.rows += 1;
        self.expected = Some((seq + 1, hash.to_vec()));
        self.last = Some((seq, hash.to_vec()));
        Ok(())
    }

    /// A row without a place in the chain: one from before the chain began (older
    /// than the upgrade that began it, than its first row, and than the anchor's)
    /// is outside it; any other was inserted.
    fn outside(&mut self, fields: &[Option<&str>]) -> Result<(), Broken> {
        let at = time_of(fields);
        let after = match (&self.last, &self.start) {
            (Some((last, _)), _) => Some(*last),
            (None, Start::Anchor { seq, at: a, .. }) if at > *a => Some(*seq),
            _ => None,
        };
        let problem = match (after, self.began) {
            (Some(after), _) => format!(
                "a row outside the chain is dated after the chain began (after row {after}): \
                 it was inserted, not written by the ledger"
            ),
            (None, Some(began)) if at < began => {
                self.unchained += 1;
                return Ok(());
            }
            (None, Some(_)) => {
                "a row outside the chain is dated after the chain began (the upgrade \
                 to 2.4.0): it was inserted, not written by the ledger"
                    .into()
            }
            (None, None) => "a row outside the chain where every row is chained (mcp_auth was \
                 installed with its chains): it was inserted, not written by the ledger"
                .into(),
        };
        Err(Broken {
            seq: after.unwrap_or_else(|| self.last_seq()),
            problem,
        })
    }

    fn last_seq(&self) -> i64 {
        match (&self.last, &self.start) {
            (Some((s, _)), _) => *s,
            (None, Start::Anchor { seq, .. }) => *seq,
            _ => 0,
        }
    }

    /// Checks that the walk reached `seq` (a signed checkpoint's, or the head),
    /// where the row must have `hash`. `what` names it in the message.
    pub fn reaches(&self, seq: i64, hash: &[u8], what: &str) -> Result<(), Broken> {
        let last = self.last_seq();
        if last < seq {
            return Err(Broken {
                seq: last + 1,
                problem: format!(
                    "the rows end at {last} but {what} is at {seq}: rows at the end are missing (truncated)"
                ),
            });
        }
        self.holds(seq, hash, what)
    }

    /// Checks the end of a walk over the whole chain: it must reach the head the
    /// database records, through that row (when rows exist, there must be one), and
    /// the highest checkpoint. Rows after the head are not flagged: the ledger's
    /// writer keeps the heads itself and records them at most a second behind its
    /// last row (src/ledger/chain.rs), so the rows of that last second are vouched
    /// for by their links only, until a checkpoint covers them.
    pub fn finish(
        &self,
        head: Option<&(i64, Vec<u8>)>,
        checkpoints: &Checkpoints,
        what: &str,
    ) -> Result<(), Broken> {
        match head {
            Some((seq, hash)) => self.reaches(*seq, hash, "the chain's head")?,
            None if self.rows > 0 => {
                return Err(Broken {
                    seq: self.first.unwrap_or(0),
                    problem: "rows carry sequence numbers but the tenant's chain has no head"
                        .into(),
                })
            }
            None => {}
        }
        match checkpoints.highest() {
            Some((seq, hash)) => self.reaches(*seq, hash, what),
            None => Ok(()),
        }
    }

    /// What the walk covered, in words.
    pub fn covered(&self) -> String {
        let range = match (self.first, &self.last) {
            (Some(f), Some((l, _))) => format!("rows {f} to {l}"),
            _ => "no chained rows".to_string(),
        };
        let from = match &self.start {
            Start::Genesis => "from the start of the chain".to_string(),
            Start::Anchor { seq, .. } => format!("after a purge's anchor at {seq}"),
            Start::Range => "of the time range (the link into it is not checked)".to_string(),
        };
        let mut text = format!("{range}, {from}");
        if self.unchained > 0 {
            text += &format!(
                "; {} rows from before the chain (2.4.0) are outside it",
                self.unchained
            );
        }
        text
    }

    /// Whether the row at `seq`, if the walk passed it, had `hash`. The walk keeps
    /// only its last hash, so checkpoints are checked as the walk passes them
    /// (`Checkpoints`); this checks the last row.
    fn holds(&self, seq: i64, hash: &[u8], what: &str) -> Result<(), Broken> {
        match &self.last {
            Some((s, h)) if *s == seq && h.as_slice() != hash => Err(Broken {
                seq,
                problem: format!(
                    "row {seq}'s hash is not the one {what} records: the chain was rewritten"
                ),
            }),
            _ => Ok(()),
        }
    }
}

/// Known (seq, hash) points of a chain (checkpoints), checked as a walk passes them.
#[derive(Default)]
pub struct Checkpoints {
    points: Vec<(i64, Vec<u8>)>,
    next: usize,
}

impl Checkpoints {
    pub fn new(mut points: Vec<(i64, Vec<u8>)>) -> Checkpoints {
        points.sort_by_key(|(s, _)| *s);
        Checkpoints { points, next: 0 }
    }

    /// After `walk` took a row: the checkpoints at or before it must match.
    pub fn passed(&mut self, walk: &Walk, what: &str) -> Result<(), Broken> {
        let Some((seq, _)) = walk.last.as_ref() else {
            return Ok(());
        };
        while let Some((s, h)) = self.points.get(self.next) {
            if s > seq {
                break;
            }
            if s == seq {
                walk.holds(*s, h, what)?;
            }
            self.next += 1;
        }
        Ok(())
    }

    /// The highest checkpoint: the walk must reach it.
    pub fn highest(&self) -> Option<&(i64, Vec<u8>)> {
        self.points.last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: i64) -> Vec<Option<String>> {
        vec![
            Some("t".into()),
            Some(n.to_string()),
            None,
            Some(format!("tool {n}")),
        ]
    }

    /// A row as the walk takes it: seq, prev_hash, hash, fields.
    type Row = (i64, Vec<u8>, Vec<u8>, Vec<Option<String>>);

    fn fields(f: &[Option<String>]) -> Vec<Option<&str>> {
        f.iter().map(|x| x.as_deref()).collect()
    }

    fn chain(n: i64) -> Vec<Row> {
        let mut prev = GENESIS.to_vec();
        (1..=n)
            .map(|s| {
                let f = row(s);
                let h = link(&prev, f.iter().map(|x| x.as_deref())).to_vec();
                let out = (s, prev.clone(), h.clone(), f);
                prev = h;
                out
            })
            .collect()
    }

    fn walk(rows: &[Row]) -> Result<Walk, Broken> {
        let mut w = Walk::new(Start::Genesis, None);
        for (s, p, h, f) in rows {
            w.row(Some(*s), Some(p), Some(h), &fields(f))?;
        }
        Ok(w)
    }

    #[test]
    fn null_and_empty_fields_hash_differently() {
        assert_ne!(link(&GENESIS, [None]), link(&GENESIS, [Some("")]));
        // Lengths keep field boundaries: ("ab", "c") is not ("a", "bc").
        assert_ne!(
            link(&GENESIS, [Some("ab"), Some("c")]),
            link(&GENESIS, [Some("a"), Some("bc")])
        );
    }

    #[test]
    fn a_whole_chain_verifies_and_reaches_its_head() {
        let rows = chain(5);
        let w = walk(&rows).unwrap();
        assert_eq!((w.first, w.rows), (Some(1), 5));
        assert!(w.reaches(5, &rows[4].2, "the head").is_ok());
        assert!(w.reaches(6, &rows[4].2, "the head").is_err());
    }

    #[test]
    fn each_kind_of_tampering_is_found_where_it_is() {
        let rows = chain(6);
        let mut edited = rows.clone();
        edited[2].3[3] = Some("other".into());
        assert_eq!(walk(&edited).err().unwrap().seq, 3);
        let mut deleted = rows.clone();
        deleted.remove(3);
        let e = walk(&deleted).err().unwrap();
        assert_eq!((e.seq, e.problem.contains("row 4 is missing")), (5, true));
        let mut swapped = rows.clone();
        swapped.swap(1, 2);
        assert_eq!(walk(&swapped).err().unwrap().seq, 3);
        // A forged row with a recomputed hash, and every later row re-linked: the
        // chain is whole again, but a checkpoint taken before says otherwise.
        let mut forged = rows[..2].to_vec();
        let mut prev = rows[1].2.clone();
        for s in 3..=7 {
            let f = row(s + 100);
            let h = link(&prev, f.iter().map(|x| x.as_deref())).to_vec();
            forged.push((s, prev.clone(), h.clone(), f));
            prev = h;
        }
        let w = walk(&forged).unwrap();
        let mut points = Checkpoints::new(vec![(4, rows[3].2.clone())]);
        let mut w2 = Walk::new(Start::Genesis, None);
        let mut found = None;
        for (s, p, h, f) in &forged {
            w2.row(Some(*s), Some(p), Some(h), &fields(f)).unwrap();
            if let Err(e) = points.passed(&w2, "the checkpoint") {
                found = Some(e.seq);
                break;
            }
        }
        assert_eq!(found, Some(4));
        assert_eq!(w.rows, 7);
    }

    #[test]
    fn a_walk_from_an_anchor_takes_no_row_at_or_before_it() {
        let rows = chain(6);
        let anchor = || Start::Anchor {
            seq: 3,
            hash: rows[2].2.clone(),
            at: 0,
        };
        let w = walk_from(anchor(), &rows[3..]).unwrap();
        assert_eq!((w.first, w.rows), (Some(4), 3));
        // A purge removes every row up to its anchor: one left there (put back, or
        // under a forged anchor) is found, whatever it links to.
        let e = walk_from(anchor(), &rows[1..]).unwrap_err();
        assert_eq!(
            (
                e.seq,
                e.problem.contains("at or before the purge's anchor (3)")
            ),
            (2, true)
        );
        let e = walk_from(anchor(), &[rows[0].clone(), rows[3].clone()]).unwrap_err();
        assert_eq!(e.seq, 1);
    }

    #[test]
    fn a_row_outside_the_chain_may_only_predate_it() {
        let rows = chain(2);
        let (s, p, h, f) = &rows[0];
        // Upgraded at some time: an older row is from before the chain.
        let mut w = Walk::new(Start::Genesis, Some(0));
        w.row(None, None, None, &[None]).unwrap();
        w.row(Some(*s), Some(p), Some(h), &fields(f)).unwrap();
        assert_eq!(w.unchained, 1);
        assert_eq!(w.row(None, None, None, &[None]).unwrap_err().seq, 1);
        // Installed with the chains: no row can be from before them.
        let e = Walk::new(Start::Genesis, None)
            .row(None, None, None, &[None])
            .unwrap_err();
        assert!(e.problem.contains("every row is chained"), "{}", e.problem);
    }

    fn walk_from(start: Start, rows: &[Row]) -> Result<Walk, Broken> {
        let mut w = Walk::new(start, None);
        for (s, p, h, f) in rows {
            w.row(Some(*s), Some(p), Some(h), &fields(f))?;
        }
        Ok(w)
    }

    #[test]
    fn an_anchor_must_be_the_row_before_the_first_left() {
        let rows = chain(5);
        let wrong = Start::Anchor {
            seq: 3,
            hash: rows[1].2.clone(),
            at: 0,
        };
        assert_eq!(walk_from(wrong, &rows[3..]).unwrap_err().seq, 4);
        // Seq 1 must follow the genesis hash.
        let mut relinked = rows.clone();
        relinked[0].1 = vec![1; 32];
        relinked[0].2 = link(&relinked[0].1, fields(&relinked[0].3)).to_vec();
        assert_eq!(walk_from(Start::Genesis, &relinked).unwrap_err().seq, 1);
    }

    #[test]
    fn after_a_purge_a_row_outside_the_chain_may_only_predate_the_anchor() {
        let at = |t: &str| {
            let mut f = vec![None; 13];
            f[TIME] = Some(t.to_string());
            f
        };
        let anchor = || Start::Anchor {
            seq: 3,
            hash: GENESIS.to_vec(),
            at: 1_000,
        };
        let upgraded = |began| Walk::new(anchor(), Some(began));
        assert!(upgraded(2_000)
            .row(None, None, None, &fields(&at("999")))
            .is_ok());
        assert_eq!(
            upgraded(2_000)
                .row(None, None, None, &fields(&at("1001")))
                .unwrap_err()
                .seq,
            3
        );
        assert!(upgraded(2_000)
            .row(None, None, None, &fields(&at("infinity")))
            .is_err());
        assert!(upgraded(2_000)
            .row(None, None, None, &fields(&at("-infinity")))
            .is_ok());
        // Before the anchor but after the upgrade: inserted (back-dated).
        assert!(upgraded(500)
            .row(None, None, None, &fields(&at("999")))
            .is_err());
    }

    #[test]
    fn both_logs_print_their_time_at_one_place_and_call_only_checked_builtins() {
        for log in Log::ALL {
            assert_eq!(log.fields()[TIME], TIME_FIELD);
            assert_eq!(Log::parse(log.name()), Some(log));
            for field in log.fields() {
                // Every function a field calls is one the built-ins check covers.
                for call in field.split("pg_catalog.").skip(1) {
                    let end = call
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(call.len());
                    if !call[end..].starts_with('(') {
                        continue; // a type in a cast
                    }
                    let name = &call[..end];
                    assert!(
                        BUILTINS
                            .iter()
                            .any(|(f, _)| f.starts_with(&format!("pg_catalog.{name}("))),
                        "{name} in {log:?}'s fields is not in BUILTINS"
                    );
                }
            }
        }
    }
}
