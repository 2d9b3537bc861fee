//! The rules of mcp_auth that need no database: the public key format and its
//! checksum, the lookup digest, and tool-permission patterns.
//!
//! The PostgreSQL extension and the `mcp-auth` binary both depend on this crate,
//! so a key is generated, parsed and matched by one implementation everywhere.

pub mod key;
pub mod redact;
pub mod tools;

pub use key::{Environment, KeyFormatError, ParsedKey};
