//! Integer id lists written into `IN (...)`: ids are integers, so they are written as
//! literals (no parameter per id), a bounded number per statement.

/// Ids per statement.
pub(crate) const PER_STATEMENT: usize = 400;

/// `1, 2, 3`: the ids as SQL integer literals.
pub(crate) fn literal(ids: &[i64]) -> String {
    ids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
