//! One run of an org into a database at a time. A run into a SQL destination holds the org's
//! sync lease there (`sync_locks`), whether the scheduler or the command line started it, so
//! two runs of one org never walk Drift side by side and spend its request budget twice for
//! the same rows. The lease is renewed every third of its length; a run that could not renew
//! it in time (it stalled past the lease, and another run may have taken over) is abandoned.
//! A directory destination is held by its lock file instead (`dir_lock`).
//!
//! A run that was killed leaves its lease behind until it runs out. So that running it again
//! at once resumes it, the holder's name carries its process: the boot and PID namespace it
//! ran in and its PID (on Linux). A process in the same boot and namespace that finds no such
//! PID any more takes the lease over; a holder elsewhere is waited for.

use std::future::Future;
use std::time::Duration;

use bridge_store::{Store, checkpoints};
use drift_types::OrgId;

/// How a run under the lease ended.
#[derive(Debug)]
pub enum Leased<T> {
    /// It ran to its end.
    Ran(T),
    /// Another run holds the lease: its holder and when its lease runs out (epoch ms), when
    /// it could still be read.
    Busy(Option<(String, i64)>),
    /// The lease was lost mid-run; the run was abandoned where it stood (its last page was
    /// not committed, so the next run resumes before it).
    Lost,
}

/// Runs `work` holding the sync lease of `org` in `store` as `holder`.
pub async fn hold<T>(
    store: &Store,
    org: OrgId,
    holder: &str,
    lease: Duration,
    work: impl Future<Output = T>,
) -> bridge_store::Result<Leased<T>> {
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
    let me = Process::this();
    let holder = &match &me {
        Some(p) => format!("{holder}{TAG}{p}"),
        None => holder.to_owned(),
    };
    let now = drift_types::now_ms();
    if !checkpoints::try_lock(store, org, holder, now, now + lease_ms).await? {
        let current = checkpoints::lock_holder(store, org).await?;
        let dead = current.as_ref().filter(|(h, _)| {
            me.as_ref()
                .zip(Process::of(h))
                .is_some_and(|(me, p)| p.gone_beside(me))
        });
        let taken = match dead {
            Some((h, _)) => {
                let taken = checkpoints::take_over(store, org, h, holder, now + lease_ms).await?;
                if taken {
                    tracing::info!(
                        org.id = org.0,
                        from = %h,
                        "took over the sync lease of a run that is gone"
                    );
                }
                taken
            }
            None => false,
        };
        if !taken {
            return Ok(Leased::Busy(
                current.map(|(h, until)| (name(&h).to_owned(), until)),
            ));
        }
    }
    let renew = async {
        loop {
            tokio::time::sleep(lease / 3).await;
            let now = drift_types::now_ms();
            match checkpoints::try_lock(store, org, holder, now, now + lease_ms).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => tracing::warn!(org.id = org.0, error = %e, "renewing the sync lease"),
            }
        }
    };
    let outcome = tokio::select! {
        r = work => Leased::Ran(r),
        () = renew => Leased::Lost,
    };
    if matches!(outcome, Leased::Ran(_))
        && let Err(e) = checkpoints::unlock(store, org, holder).await
    {
        // It runs out by itself; the next run waits until then.
        tracing::warn!(org.id = org.0, error = %e, "giving the sync lease back");
    }
    Ok(outcome)
}

/// What separates a holder's name from its process in the lease row.
const TAG: &str = " #proc:";

/// A holder's name without its process.
fn name(holder: &str) -> &str {
    holder.split_once(TAG).map_or(holder, |(n, _)| n)
}

/// A process, as the lease row records it.
#[derive(Debug, PartialEq)]
struct Process {
    boot: String,
    namespace: String,
    pid: u32,
}

impl std::fmt::Display for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.boot, self.namespace, self.pid)
    }
}

impl Process {
    /// This process; none where `/proc` does not say (then nobody takes its lease over).
    fn this() -> Option<Self> {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
        Some(Process {
            boot: boot.trim().to_owned(),
            namespace: namespace.to_string_lossy().into_owned(),
            pid: std::process::id(),
        })
    }

    /// The process a holder's name records, if it records one.
    fn of(holder: &str) -> Option<Self> {
        let (_, p) = holder.rsplit_once(TAG)?;
        let mut parts = p.rsplitn(3, '/');
        let pid = parts.next()?.parse().ok()?;
        let namespace = parts.next()?.to_owned();
        let boot = parts.next()?.to_owned();
        Some(Process {
            boot,
            namespace,
            pid,
        })
    }

    /// Whether it is known to have ended, seen from `me`: it ran in the same boot and PID
    /// namespace, and its PID is no longer there. (A PID taken by a new process reads as
    /// alive: the lease is then waited for, never taken from a live run.)
    fn gone_beside(&self, me: &Process) -> bool {
        me.boot == self.boot
            && me.namespace == self.namespace
            && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store(dir: &tempfile::TempDir) -> Store {
        Store::connect(&format!("sqlite:{}", dir.path().join("l.db").display()))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_second_holder_is_told_who_runs_and_the_lease_is_free_after() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir).await;
        let (org, lease) = (OrgId(7), Duration::from_secs(60));
        let inner = hold(&s, org, "first", lease, async {
            match hold(&s, org, "second", lease, async { "ran" })
                .await
                .unwrap()
            {
                Leased::Busy(Some((h, until))) => {
                    assert_eq!(h, "first", "its name, without its process");
                    assert!(until > drift_types::now_ms() + 50_000, "{until}");
                    "busy"
                }
                other => panic!("the second holder was not refused: {other:?}"),
            }
        })
        .await
        .unwrap();
        assert!(matches!(inner, Leased::Ran("busy")), "{inner:?}");
        // Given back at the end: the next run takes it at once.
        let next = hold(&s, org, "second", lease, async { "ran" })
            .await
            .unwrap();
        assert!(matches!(next, Leased::Ran("ran")), "{next:?}");
        // Another org's lease is another row.
        let other = hold(&s, OrgId(8), "x", lease, async {
            hold(&s, org, "y", lease, async { 1 }).await.unwrap()
        })
        .await
        .unwrap();
        assert!(matches!(other, Leased::Ran(Leased::Ran(1))), "{other:?}");
    }

    #[tokio::test]
    async fn a_lease_left_by_a_process_that_is_gone_is_taken_over_and_one_elsewhere_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir).await;
        let (org, lease) = (OrgId(7), Duration::from_secs(60));
        let me = Process::this().expect("/proc on this machine");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let now = drift_types::now_ms();
        let dead = Process {
            pid: dead_pid,
            ..Process::this().unwrap()
        };
        let killed = format!("export pid{dead_pid}-1{TAG}{dead}");
        assert!(
            checkpoints::try_lock(&s, org, &killed, now, now + 60_000)
                .await
                .unwrap()
        );
        let resumed = hold(&s, org, "export again", lease, async {
            checkpoints::lock_holder(&s, org).await.unwrap().unwrap().0
        })
        .await
        .unwrap();
        match resumed {
            Leased::Ran(h) => assert_eq!(h, format!("export again{TAG}{me}")),
            other => panic!("a dead run's lease was not taken over: {other:?}"),
        }
        // Another machine's (or container's) run cannot be seen, so it is waited for, and a
        // live process is never taken over.
        for other in [
            Process {
                boot: "another-boot".into(),
                ..Process::this().unwrap()
            },
            Process {
                namespace: "pid:[1]".into(),
                ..Process::this().unwrap()
            },
            Process::this().unwrap(),
        ] {
            let h = format!("sync pid1-1{TAG}{other}");
            assert!(
                checkpoints::try_lock(&s, org, &h, now, now + 60_000)
                    .await
                    .unwrap()
            );
            match hold(&s, org, "export again", lease, async {})
                .await
                .unwrap()
            {
                Leased::Busy(Some((name, _))) => assert_eq!(name, "sync pid1-1"),
                other => panic!("{other:?} beside {h}"),
            }
            checkpoints::unlock(&s, org, &h).await.unwrap();
        }
        assert_eq!(Process::of(&format!("x{TAG}{me}")), Some(me));
        assert_eq!(Process::of("pid1-2"), None);
    }

    #[tokio::test]
    async fn a_run_whose_lease_another_took_is_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir).await;
        let org = OrgId(7);
        let out = hold(&s, org, "slow", Duration::from_millis(300), async {
            // As when this process stalled past its lease: the lease is gone, and another
            // run takes it.
            let slow = checkpoints::lock_holder(&s, org).await.unwrap().unwrap().0;
            assert!(slow.starts_with("slow "), "{slow}");
            checkpoints::unlock(&s, org, &slow).await.unwrap();
            let now = drift_types::now_ms();
            assert!(
                checkpoints::try_lock(&s, org, "other", now, now + 60_000)
                    .await
                    .unwrap()
            );
            tokio::time::sleep(Duration::from_secs(5)).await;
            "finished"
        })
        .await
        .unwrap();
        assert!(matches!(out, Leased::Lost), "{out:?}");
        // The new holder keeps it.
        let held = checkpoints::lock_holder(&s, org).await.unwrap().unwrap();
        assert_eq!(held.0, "other");
    }
}
