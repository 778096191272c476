//! Retention: thirty simulated days of webhooks (a controllable clock, no waiting) with
//! seven-day windows; the purge keeps the store from growing, the same traffic without it
//! does not.

use std::time::Duration;

use bridge_core::retention::RetentionConfig;
use bridge_store::Store;
use bridge_store::testing::BACKENDS;
use driftbridge::bench::retention::{Traffic, simulate, windows};

/// Every kind kept `days` days, purged `batch` rows at a time.
fn config(days: u64, batch: i64) -> RetentionConfig {
    RetentionConfig {
        windows: windows(days),
        interval: Duration::from_secs(600),
        batch,
        pause: Duration::ZERO,
        lease: Duration::from_secs(600),
        holder: "test".into(),
    }
}

#[tokio::test]
async fn thirty_simulated_days_with_seven_day_windows_stop_the_store_growing() {
    for &backend in BACKENDS {
        let traffic = Traffic {
            webhooks: 60,
            new_messages: 0,
            conversations: 10,
        };
        let cfg = config(7, 25);
        let mut runs = Vec::new();
        for purge in [false, true] {
            let Some(db) = bridge_store::testing::fresh(backend).await else {
                return;
            };
            let store = Store::connect(&db.url).await.unwrap();
            let days = simulate(&store, 30, traffic, purge.then_some(&cfg))
                .await
                .unwrap();
            store.close().await;
            runs.push(days);
        }
        let (kept, purged) = (&runs[0], &runs[1]);
        let rows = |d: &driftbridge::bench::retention::Day, t: &str| d.rows[t];
        for t in ["events", "jobs"] {
            // Without a purge every day adds; with it, a week's worth stays.
            assert_eq!(rows(&kept[29], t), 30 * 60, "{backend:?} {t}");
            for d in &purged[9..] {
                assert_eq!(
                    rows(d, t),
                    rows(&purged[8], t),
                    "{backend:?} {t} day {}",
                    d.day
                );
            }
            assert!(rows(&purged[29], t) <= 8 * 60, "{backend:?} {t}");
        }
        // The same conversations come back every day: their rows are upserted, not added.
        assert_eq!(rows(&purged[29], "deliveries"), 10);
        assert_eq!(rows(&purged[29], "transcripts"), 10);
        if backend == bridge_store::Backend::Sqlite {
            let (a, b) = (purged[11].file_bytes, purged[29].file_bytes);
            assert!(b <= a, "the file grew from {a} to {b} bytes after day 12");
            assert!(
                kept[29].file_bytes > b,
                "the purge made no difference to the file size"
            );
        }
    }
}

#[tokio::test]
async fn old_message_bodies_are_cleared_and_recent_ones_kept() {
    let traffic = Traffic {
        webhooks: 1,
        new_messages: 5,
        conversations: 5,
    };
    let cfg = config(3, 2);
    for &backend in BACKENDS {
        let Some(db) = bridge_store::testing::fresh(backend).await else {
            return;
        };
        let store = Store::connect(&db.url).await.unwrap();
        let days = simulate(&store, 10, traffic, Some(&cfg)).await.unwrap();
        let last = &days[9];
        assert_eq!(
            last.rows["messages"], 50,
            "{backend:?}: message rows are kept"
        );
        // Days 7..=10 are within three days of day 10 (the cut-off itself is kept).
        assert_eq!(last.rows["message_bodies"], 4 * 5, "{backend:?}");
        store.close().await;
    }
}
