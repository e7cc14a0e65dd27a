//! Shards (engine under construction).
pub mod io;
