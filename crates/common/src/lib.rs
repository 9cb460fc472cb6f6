//! berth-common: the small helpers every Berth crate shares, each written once — time as
//! Docker writes it (`time`), sizes as people read and write them (`units`), and Go's
//! `path.Match` (`glob`), durable file replacement (`fs`), polling until a deadline (`poll`)
//! and the defaults every process gets (`process`). Nothing here knows about containers, images or stores.
pub mod fs;
pub mod glob;
pub mod poll;
pub mod process;
pub mod strconv;
pub mod time;
pub mod units;
