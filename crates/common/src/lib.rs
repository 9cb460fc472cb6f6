//! berth-common: the small helpers every Berth crate shares, each written once — time as
//! Docker writes it (`time`), sizes as people read and write them (`units`), and Go's
//! `path.Match` (`glob`). Nothing here knows about containers, images or stores.
pub mod glob;
pub mod time;
pub mod units;
