//! The `backfill` batch binary's library side: imports of historical orders
//! and fills, and the progress display every subcommand shares.

pub mod import;
pub mod progress;
