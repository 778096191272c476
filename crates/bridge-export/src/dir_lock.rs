//! One writer per file destination: a run holds an advisory lock (`flock`) on `DIR/_lock`
//! for as long as it has the directory open. The system drops it when the process ends,
//! however it ends, so a killed run never leaves the directory locked.
//!
//! Without it, a second run into a directory being written (a scheduled export overlapping a
//! manual one) took the first's open parts for a killed run's: it completed them under the
//! first and removed the files the first had not committed yet.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::part::io;

/// The lock file's name in the directory (readers skip names that begin with `_`).
pub(crate) const LOCK: &str = "_lock";

/// This process's hold on a directory; released when dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the directory, or answers [`Error::Busy`] when another run holds it. The lock
    /// file then names this process, for the next run's error.
    pub(crate) fn take(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK);
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io("opening", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                // Best effort: the holder may be writing its pid at this moment.
                let _ = file.read_to_string(&mut holder);
                return Err(Error::Busy {
                    dir: dir.to_owned(),
                    holder: holder.trim().parse().ok(),
                });
            }
            // A filesystem without locks: the directory is written as before this lock
            // existed, and the operator is told what that risks.
            Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                tracing::warn!(
                    file = %path.display(),
                    error = %e,
                    "this filesystem cannot lock the export directory: do not run two exports \
                     or a purge into it at once"
                );
            }
            Err(TryLockError::Error(e)) => return Err(io("locking", &path)(e)),
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| write!(file, "{}", std::process::id()))
            .map_err(io("writing", &path))?;
        Ok(DirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_has_one_holder_at_a_time_and_is_free_once_it_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::take(dir.path()).unwrap();
        let e = DirLock::take(dir.path()).unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(e, Error::Busy { holder: Some(pid), .. } if pid == std::process::id()),
            "{e:?}"
        );
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
        assert!(
            text.contains(&format!("process {}", std::process::id())),
            "{text}"
        );
        drop(held);
        DirLock::take(dir.path()).unwrap();
    }
}
