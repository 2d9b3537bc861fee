//! The one error type of `mcp-auth`. No message ever holds a key: keys only travel
//! as bind parameters, and what is printed is redacted besides.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// DATABASE_URL, or a certificate it names, is not usable.
    #[error("{0}")]
    Config(String),
    /// PostgreSQL could not be reached; every cause is named.
    #[error("{0}")]
    Connect(String),
    /// A statement failed: PostgreSQL's own message.
    #[error("{}", db_message(.0))]
    Query(#[from] tokio_postgres::Error),
    #[error("unreadable answer from the database: {0}")]
    Answer(#[from] serde_json::Error),
    /// A call given up before it ran: its client has gone.
    #[error("the client has gone")]
    Abandoned,
    /// An operator command that did not succeed, in words.
    #[error("{0}")]
    Failed(String),
}

fn db_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string())
}

pub type Result<T> = std::result::Result<T, Error>;
