//! `mcp-auth audit`: signing keys, signed checkpoints of the audit chains' heads, and
//! the offline verifier. The verifier reads the rows with the calls of
//! `mcp_auth_core::audit_chain::Log::fields` and judges them with that module's walk,
//! outside the database: it trusts none of the database's functions, so it gives
//! the same answer on a restored dump, and a signed checkpoint kept elsewhere shows
//! a history rewritten or cut short after it was taken.

use crate::error::{Error, Result};
use clap::Subcommand;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use futures_util::{pin_mut, TryStreamExt};
use mcp_auth_core::audit_chain::{self, Broken, Checkpoints, Log, Start, Walk};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tokio_postgres::Client;
use uuid::Uuid;

#[derive(Subcommand)]
pub enum AuditAction {
    /// Make an Ed25519 key pair for signing checkpoints: FILE (the secret, mode 0600;
    /// keep it off the database server) and FILE.pub
    Keygen {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Record the head of every tenant's chains as a checkpoint and print it (JSON);
    /// signed with --sign, for the operator to keep outside the database
    Checkpoint {
        /// The secret key file made by `audit keygen`
        #[arg(long, value_name = "KEY_FILE")]
        sign: Option<PathBuf>,
        /// Write the checkpoint to this file instead of stdout
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Verify the chains offline: every link, each head, the checkpoints in the
    /// database and, with --checkpoint, a signed checkpoint; exits 1 on a broken chain
    Verify {
        /// Only this tenant's chains
        #[arg(long, value_name = "TENANT_ID")]
        tenant: Option<String>,
        /// A checkpoint written by `audit checkpoint --sign`
        #[arg(long, value_name = "FILE", requires = "public_key")]
        checkpoint: Option<PathBuf>,
        /// The public key (FILE.pub of `audit keygen`) the checkpoint must be signed with
        #[arg(long, value_name = "FILE", requires = "checkpoint")]
        public_key: Option<PathBuf>,
        /// Accept a checkpoint signed for a database of another name (a restored copy)
        #[arg(long, requires = "checkpoint")]
        other_database: bool,
    },
}

// 2: each head names its log (format 1, before the activity chain, had none).
// 3: it signs when the chains began too (`began`).
const FORMAT: &str = "mcp_auth audit checkpoint 3";

/// One chain's head in a checkpoint.
#[derive(Serialize, Deserialize, Clone)]
struct Head {
    tenant_id: String,
    log: String,
    seq: i64,
    hash: String,
}

/// What a checkpoint's signature covers: exactly these fields, serialized in this
/// order by serde_json.
#[derive(Serialize, Deserialize)]
struct Payload {
    format: String,
    database: String,
    taken_at: String,
    /// When the chains began (µs since 1970), in a database upgraded to them; null
    /// in one installed with them. Signed, because it decides which rows outside
    /// the chain are older rows and which were inserted.
    began: Option<i64>,
    heads: Vec<Head>,
}

#[derive(Serialize, Deserialize)]
struct Document {
    #[serde(flatten)]
    payload: Payload,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
}

fn failed(what: impl std::fmt::Display) -> Error {
    Error::Failed(what.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str, what: &str) -> Result<[u8; N]> {
    let text = text.trim();
    let bytes: Option<Vec<u8>> = (text.len() == 2 * N)
        .then(|| {
            (0..N)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
                .collect()
        })
        .flatten();
    bytes.and_then(|b| b.try_into().ok()).ok_or_else(|| {
        failed(format!(
            "{what}: must be {N} bytes in hex ({} characters)",
            2 * N
        ))
    })
}

/// The signing key, refused when others may read it.
fn signing_key(path: &Path) -> Result<SigningKey> {
    use std::os::unix::fs::MetadataExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| failed(format!("signing key {}: {e}", path.display())))?
        .mode();
    if mode & 0o077 != 0 {
        return Err(failed(format!(
            "signing key {}: others may read it (mode {:o}); chmod 600 it, and consider it exposed",
            path.display(),
            mode & 0o777
        )));
    }
    Ok(SigningKey::from_bytes(&read_hex::<32>(
        path,
        "signing key",
    )?))
}

fn read_hex<const N: usize>(path: &Path, what: &str) -> Result<[u8; N]> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| failed(format!("{what} {}: {e}", path.display())))?;
    unhex(&text, &format!("{what} {}", path.display()))
}

/// Writes `text` to a new file `path` (never over an existing file, nor through a
/// symbolic link), readable by its owner only when `secret`.
fn write(path: &Path, text: &str, secret: bool) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    if secret {
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| failed(format!("{}: {e}", path.display())))
}

pub fn keygen(out: &Path) -> Result<()> {
    let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    write(out, &format!("{}\n", hex(key.as_bytes())), true)?;
    let public = PathBuf::from(format!("{}.pub", out.display()));
    write(
        &public,
        &format!("{}\n", hex(key.verifying_key().as_bytes())),
        false,
    )?;
    eprintln!(
        "secret key: {} (keep it off the database server); public key: {}",
        out.display(),
        public.display()
    );
    Ok(())
}

pub async fn checkpoint(client: &Client, sign: Option<&Path>, out: Option<&Path>) -> Result<()> {
    let key = sign.map(signing_key).transpose()?;
    // Only whole chains are signed: a head already tampered with would become the
    // checkpoint's truth. A broken chain is left out (and named), not the others
    // with it: one tenant's admin can break its own tenant's activity chain (an MCP
    // row it adds), and must not stop every tenant's checkpoints.
    let (verdicts, began) = verdicts(client, None, None).await?;
    let broken: Vec<String> = verdicts
        .iter()
        .filter(|v| !v.verified)
        .map(|v| {
            format!(
                "tenant {}'s {} chain is broken at {}: {}",
                v.tenant_id,
                v.log,
                v.broken_seq.unwrap_or(0),
                v.problem.as_deref().unwrap_or("")
            )
        })
        .collect();
    // Recorded in the database too; what is signed is what was just verified (the
    // chains may have grown since, which the next checkpoint covers).
    let s = schema(client).await?;
    client
        .execute(&format!("SELECT FROM {s}.mcp_audit_checkpoint()"), &[])
        .await?;
    let r = client
        .query_one(
            "SELECT pg_catalog.textin(pg_catalog.timestamptz_out(pg_catalog.now())),
                    pg_catalog.current_database()::pg_catalog.text",
            &[],
        )
        .await?;
    let payload = Payload {
        format: FORMAT.into(),
        database: r.get(1),
        taken_at: r.get(0),
        began,
        heads: verdicts
            .iter()
            .filter(|v| v.verified)
            .filter_map(|v| {
                Some(Head {
                    tenant_id: v.tenant_id.clone(),
                    log: v.log.into(),
                    seq: v.last_seq?,
                    hash: v.last_hash.clone()?,
                })
            })
            .collect(),
    };
    let (public_key, signature) = match &key {
        Some(k) => {
            let signed = serde_json::to_vec(&payload)?;
            (
                Some(hex(k.verifying_key().as_bytes())),
                Some(hex(&k.sign(&signed).to_bytes())),
            )
        }
        None => (None, None),
    };
    let document = Document {
        payload,
        public_key,
        signature,
    };
    let text = format!("{}\n", serde_json::to_string_pretty(&document)?);
    match out {
        Some(path) => write(path, &text, false)?,
        None => print!("{text}"),
    }
    if broken.is_empty() {
        Ok(())
    } else {
        Err(failed(format!(
            "checkpoint written without {} broken chain(s), which it does not vouch for: {}",
            broken.len(),
            broken.join("; ")
        )))
    }
}

/// A checkpoint file whose signature verifies with the public key in `public`.
fn signed_checkpoint(path: &Path, public: &Path) -> Result<Payload> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| failed(format!("checkpoint {}: {e}", path.display())))?;
    let document: Document = serde_json::from_str(&text).map_err(|e| {
        failed(format!(
            "checkpoint {}: not a checkpoint file ({e})",
            path.display()
        ))
    })?;
    if document.payload.format != FORMAT {
        return Err(failed(format!(
            "checkpoint {}: format {:?} is not {FORMAT:?}",
            path.display(),
            document.payload.format
        )));
    }
    let key = VerifyingKey::from_bytes(&read_hex::<32>(public, "public key")?)
        .map_err(|e| failed(format!("public key {}: {e}", public.display())))?;
    let signature = document
        .signature
        .as_deref()
        .ok_or_else(|| failed(format!("checkpoint {}: it is not signed", path.display())))?;
    let signature = Signature::from_bytes(&unhex::<64>(signature, "signature")?);
    key.verify(&serde_json::to_vec(&document.payload)?, &signature)
        .map_err(|_| {
            failed(format!(
                "checkpoint {}: its signature does not verify with {}: it was altered, or signed with another key",
                path.display(),
                public.display()
            ))
        })?;
    Ok(document.payload)
}

/// The quoted schema mcp_auth is installed in: every name is qualified with it, so
/// nothing on the search_path can stand in for the extension's tables. Quoted here,
/// not by quote_ident: an overload a superuser adds to pg_catalog could name another
/// schema (the read-path check refuses one too).
async fn schema(client: &Client) -> Result<String> {
    let name: String = client
        .query_opt(
            "SELECT n.nspname FROM pg_catalog.pg_extension e
               JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
              WHERE e.extname = 'mcp_auth'::pg_catalog.name",
            &[],
        )
        .await?
        .map(|r| r.get(0))
        .ok_or_else(|| failed("mcp_auth is not installed in this database"))?;
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

async fn points(
    client: &Client,
    sql: &str,
    tenant: &Uuid,
    log: Log,
) -> Result<Vec<(i64, Vec<u8>)>> {
    Ok(client
        .query(sql, &[&tenant, &log.name()])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// One chain's verdict, as `verify_mcp_audit` gives it.
#[derive(Serialize)]
struct Verdict {
    tenant_id: String,
    log: &'static str,
    /// The last row walked, in hex: what a checkpoint signs.
    #[serde(skip)]
    last_hash: Option<String>,
    verified: bool,
    first_seq: Option<i64>,
    last_seq: Option<i64>,
    rows_checked: i64,
    covered: String,
    broken_seq: Option<i64>,
    problem: Option<String>,
}

/// Walks `tenant`'s chain of `log`. The tenant travels as a binary uuid (the log
/// as text, compared with text's own equality) and every value is printed by the
/// log's fields or here: a cast a superuser added (text to uuid, uuid to text) could
/// otherwise point the walk at another tenant's rows.
async fn verify_chain(
    client: &Client,
    s: &str,
    tenant: &Uuid,
    log: Log,
    signed: Option<&Head>,
    began: Option<i64>,
) -> Result<Verdict> {
    let anchor = client
        .query_opt(
            &format!(
                "SELECT seq, hash, {} FROM {s}.mcp_audit_anchors a WHERE tenant_id = $1 AND log = $2
                  ORDER BY seq DESC LIMIT 1",
                audit_chain::ANCHOR_TIME
            ),
            &[&tenant, &log.name()],
        )
        .await?;
    let head = points(
        client,
        &format!("SELECT seq, hash FROM {s}.mcp_audit_heads WHERE tenant_id = $1 AND log = $2"),
        tenant,
        log,
    )
    .await?
    .pop();
    let start = match anchor {
        Some(r) => Start::Anchor {
            seq: r.get(0),
            hash: r.get(1),
            at: r.get(2),
        },
        None => Start::Genesis,
    };
    let mut kept = Checkpoints::new(
        points(
            client,
            &format!(
                "SELECT seq, hash FROM {s}.mcp_audit_checkpoints WHERE tenant_id = $1 AND log = $2"
            ),
            tenant,
            log,
        )
        .await?,
    );
    let signed_point = signed
        .map(|h| unhex::<32>(&h.hash, "checkpoint hash").map(|b| (h.seq, b.to_vec())))
        .transpose()?;
    let mut signed_points = Checkpoints::new(signed_point.into_iter().collect());
    let mut walk = Walk::new(start, began);
    let sql = log.walk_sql(s, false);
    let rows = client.query_raw(&sql, [tenant]).await?;
    pin_mut!(rows);
    let mut broken: Option<Broken> = None;
    while let Some(row) = rows.try_next().await? {
        let fields: Vec<Option<&str>> = row.get(3);
        let result = walk
            .row(
                row.get(0),
                row.get::<_, Option<&[u8]>>(1),
                row.get::<_, Option<&[u8]>>(2),
                &fields,
            )
            .and_then(|()| kept.passed(&walk, "a checkpoint"))
            .and_then(|()| signed_points.passed(&walk, "the signed checkpoint"));
        if let Err(e) = result {
            broken = Some(e);
            break;
        }
    }
    if broken.is_none() {
        broken = walk
            .finish(head.as_ref(), &kept, "a checkpoint")
            .and_then(|()| match signed_points.highest() {
                Some((seq, hash)) => walk.reaches(*seq, hash, "the signed checkpoint"),
                None => Ok(()),
            })
            .err();
    }
    Ok(Verdict {
        tenant_id: tenant.to_string(),
        log: log.name(),
        last_hash: walk.last.as_ref().map(|(_, h)| hex(h)),
        verified: broken.is_none(),
        first_seq: walk.first,
        last_seq: walk.last.as_ref().map(|(s, _)| *s),
        rows_checked: walk.rows,
        covered: walk.covered(),
        broken_seq: broken.as_ref().map(|b| b.seq),
        problem: broken.map(|b| b.problem),
    })
}

/// Makes the session read the chain with PostgreSQL's own functions only: names
/// resolve in pg_catalog first (no operator or function planted in another schema
/// is found), and the functions the fields are printed with must be the built-in
/// ones.
async fn harden(client: &Client) -> Result<()> {
    client
        .batch_execute("SET search_path = pg_catalog, pg_temp")
        .await?;
    let replaced: Vec<String> = client
        .query(
            &audit_chain::builtins_check_sql(&schema(client).await?),
            &[],
        )
        .await?
        .iter()
        // Every row counts, even one whose message is NULL.
        .map(|r| {
            r.get::<_, Option<String>>(0)
                .unwrap_or_else(|| "(a finding whose name was blanked)".into())
        })
        .collect();
    if replaced.is_empty() {
        return Ok(());
    }
    Err(failed(format!(
        "this database cannot be trusted to show its audit: what the chain is read through is not \
         PostgreSQL's own ({}); verify a copy restored into a cluster whose catalogs nobody changed",
        replaced.join(", ")
    )))
}

fn parse_tenant(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text.trim()).map_err(|_| failed(format!("tenant: not a uuid ({text:?})")))
}

/// Every chain's verdict (or `tenant`'s), against `signed` when given, and when
/// the chains began (`Payload::began`).
async fn verdicts(
    client: &Client,
    tenant: Option<&str>,
    signed: Option<&Payload>,
) -> Result<(Vec<Verdict>, Option<i64>)> {
    harden(client).await?;
    let s = schema(client).await?;
    // One snapshot for every read: heads, anchors and rows read at different times
    // would disagree while the ledger writes, or a purge runs. The logs are locked
    // before it is taken, so that no purge detaches a day it still shows (a detach
    // needs the parent to itself; a purge skips whole days meanwhile, no call waits).
    client
        .batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
             LOCK TABLE ONLY {s}.{}, ONLY {s}.{} IN ACCESS SHARE MODE",
            Log::Usage.table(),
            Log::Activity.table()
        ))
        .await?;
    let began: Option<i64> = client
        .query_opt(&audit_chain::began_sql(&s), &[])
        .await?
        .map(|r| r.get(0));
    if let Some(p) = signed {
        if p.began != began {
            let says = |b: Option<i64>| match b {
                Some(us) => format!("they began at {us} µs since 1970 (an upgrade)"),
                None => "they began with the install".to_string(),
            };
            return Err(failed(format!(
                "the signed checkpoint says {}, the database says {}: mcp_audit_upgraded was changed, \
                 which would pass inserted rows for older ones",
                says(p.began),
                says(began)
            )));
        }
    }
    let mut tenants: Vec<Uuid> = match tenant {
        Some(t) => vec![parse_tenant(t)?],
        None => client
            .query(&audit_chain::tenants_sql(&s), &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect(),
    };
    if let (None, Some(p)) = (tenant, signed) {
        // A tenant whose whole chain is gone is still in the checkpoint.
        for h in &p.heads {
            tenants.push(parse_tenant(&h.tenant_id)?);
        }
    }
    tenants.sort();
    tenants.dedup();
    let mut verdicts = Vec::new();
    for t in &tenants {
        for log in Log::ALL {
            let head = signed.and_then(|p| {
                p.heads
                    .iter()
                    .find(|h| h.tenant_id == t.to_string() && h.log == log.name())
            });
            verdicts.push(verify_chain(client, &s, t, log, head, began).await?);
        }
    }
    client.batch_execute("COMMIT").await?;
    Ok((verdicts, began))
}

pub async fn verify(
    client: &Client,
    tenant: Option<&str>,
    checkpoint: Option<(&Path, &Path)>,
    other_database: bool,
    json: bool,
) -> Result<()> {
    let signed = checkpoint
        .map(|(file, public)| signed_checkpoint(file, public))
        .transpose()?;
    if let Some(p) = &signed {
        let here: String = client
            .query_one("SELECT pg_catalog.current_database()::text", &[])
            .await?
            .get(0);
        if p.database != here && !other_database {
            return Err(failed(format!(
                "the checkpoint was signed for database {:?}, not {here:?}; for a restored copy, \
                 say so with --other-database",
                p.database
            )));
        }
    }
    let (verdicts, _) = verdicts(client, tenant, signed.as_ref()).await?;
    if json {
        println!("{}", serde_json::to_string(&verdicts)?);
    } else {
        if let Some(p) = &signed {
            println!(
                "signed checkpoint of {} ({}) verifies",
                p.taken_at, p.database
            );
        }
        for v in &verdicts {
            match &v.problem {
                None => println!("tenant {} {}: verified, {}", v.tenant_id, v.log, v.covered),
                Some(problem) => println!(
                    "tenant {} {}: BROKEN at {}: {problem} ({})",
                    v.tenant_id,
                    v.log,
                    v.broken_seq.unwrap_or(0),
                    v.covered
                ),
            }
        }
    }
    match verdicts.iter().filter(|v| !v.verified).count() {
        0 => Ok(()),
        n => Err(failed(format!(
            "{n} of {} audit chains are broken",
            verdicts.len()
        ))),
    }
}
