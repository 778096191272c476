//! Counts per time bucket for the console's charts, each one index range read: events
//! received, and jobs finished by outcome.

use crate::{Op, Result, Store};

/// Counts per bucket: `buckets[i]` covers `[start + i*width, start + (i+1)*width)`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Series {
    /// The first bucket's start (epoch ms).
    pub start: i64,
    /// A bucket's width (ms).
    pub width: i64,
    /// The counts.
    pub buckets: Vec<i64>,
}

impl Series {
    fn new(start: i64, width: i64, n: usize) -> Self {
        Series {
            start,
            width,
            buckets: vec![0; n],
        }
    }

    fn add(&mut self, bucket: i64, count: i64) {
        let i = bucket - self.start / self.width;
        if let Some(b) = usize::try_from(i)
            .ok()
            .and_then(|i| self.buckets.get_mut(i))
        {
            *b += count;
        }
    }

    /// The sum over every bucket.
    pub fn total(&self) -> i64 {
        self.buckets.iter().sum()
    }
}

fn start_of(now_ms: i64, width: i64, n: usize) -> i64 {
    (now_ms / width + 1 - n as i64) * width
}

/// Events received in the `n` buckets of `width` ms that end with the one holding `now_ms`.
pub async fn events(store: &Store, now_ms: i64, width: i64, n: usize) -> Result<Series> {
    let mut s = Series::new(start_of(now_ms, width, n), width, n);
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT received_at / $2, COUNT(*) FROM events WHERE received_at >= $1 GROUP BY 1",
    )
    .bind(s.start)
    .bind(width)
    .fetch_all(store.pool())
    .await
    .op("counting events over time")?;
    for (b, c) in rows {
        s.add(b, c);
    }
    Ok(s)
}

/// Jobs that finished in `state` (`done` or `dead`) per bucket, like [`events`].
pub async fn jobs_finished(
    store: &Store,
    state: &str,
    now_ms: i64,
    width: i64,
    n: usize,
) -> Result<Series> {
    let mut s = Series::new(start_of(now_ms, width, n), width, n);
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT finished_at / $3, COUNT(*) FROM jobs WHERE state = $1 AND finished_at >= $2 \
         GROUP BY 1",
    )
    .bind(state)
    .bind(s.start)
    .bind(width)
    .fetch_all(store.pool())
    .await
    .op("counting finished jobs over time")?;
    for (b, c) in rows {
        s.add(b, c);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_end_with_the_current_one_and_ignore_strays() {
        let start = start_of(10_500, 1_000, 3);
        assert_eq!(start, 8_000);
        let mut s = Series::new(start, 1_000, 3);
        s.add(8, 2);
        s.add(10, 1);
        s.add(7, 5);
        s.add(11, 5);
        assert_eq!(s.buckets, vec![2, 0, 1]);
        assert_eq!(s.total(), 3);
    }
}
