//! Tools in the database: the registry, argument validation against each tool's
//! JSON Schema, the handler runner, and the two MCP entry points `list_tools` and
//! `call_tool`.

pub mod dispatch;
pub mod registry;
pub mod runner;
