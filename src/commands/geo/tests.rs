//! Handler-level tests for the geo family: scripts recorded from redis-server 7.0.15 (see
//! `commands::zset::tests` for how), covering the examples of Redis's own `geo.tcl`, every
//! error, the formatting of coordinates and distances in both protocols, ties between equal
//! distances under full and partial sorts, and scores no geo command writes.

mod recorded;

pub(crate) use crate::commands::zset::tests::run_script;
