//! The wire: RESP2/RESP3 request parsing (multibulk and inline) and the reply writer.
//!
//! `parse` turns the bytes a connection received into commands (`Vec<Bytes>` of arguments,
//! sharing the connection's read buffer, no copy), enforcing Redis's limits with its exact
//! error texts. `write` encodes replies. Nothing here knows about connections or commands.

pub mod parse;
pub mod write;

pub use parse::{parse_command, parse_command_into, Limits, ProtoError};
pub use write::{fmt_double, Out, Proto};
