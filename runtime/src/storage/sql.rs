//! What the SQL backends (SQLite and PostgreSQL) share: numbers as signed
//! 64-bit integers, how long oid lists are kept, and history modes in words.

use super::History;

/// A caller's oid or tid as the SQL backends store it, or `None` at or
/// above 2^63, where nothing is stored: a load of it finds nothing, and
/// nothing comes after it.
pub(crate) fn sql_int(n: u64) -> Option<i64> {
    i64::try_from(n).ok()
}

/// A caller's oid or tid as an inclusive upper bound in SQL: at or above
/// 2^63 it bounds nothing, as every stored number is below it.
pub(crate) fn sql_bound(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// How many recent transactions keep their oid lists (`pb_transaction.oids`)
/// on the SQL backends; older lists are dropped a thousand at a time, and a
/// poll from further back scans `pb_object` instead.
pub(crate) const KEEP_CHANGES: i64 = 10_000;

/// How messages name a history mode.
pub(crate) fn describe_history(history: History) -> &'static str {
    match history {
        History::Free => "history-free",
        History::Preserving => "history-preserving",
    }
}
