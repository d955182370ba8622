//! Keeps cluster tests from overlapping, whether they run as threads of one
//! process (`cargo test`) or as processes of their own (`cargo nextest`).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// Held for the whole of a cluster test, so that no two overlap: one that
/// stops PostgreSQL or Redis would break any other running then.
pub struct ClusterLock {
    dir: PathBuf,
    _threads: MutexGuard<'static, ()>,
}

/// How long a test waits for the others (each takes well under two minutes).
const LOCK_WAIT: Duration = Duration::from_secs(600);
/// A lock older than this is left over, whoever made it.
const LOCK_STALE: Duration = Duration::from_secs(900);

/// Waits until no other cluster test runs, in this process or any other.
/// Across processes the lock is a directory (created atomically) holding the
/// holder's pid; one whose holder is gone is taken over.
pub fn exclusive() -> ClusterLock {
    static THREADS: Mutex<()> = Mutex::new(());
    // A test that failed while holding it poisons it; the lock still works.
    let threads = THREADS.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = std::env::temp_dir().join("hookd-cluster-tests.lock");
    let me = std::process::id().to_string();
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                std::fs::write(dir.join("pid"), &me).expect("writing the lock's pid file");
                return ClusterLock {
                    dir,
                    _threads: threads,
                };
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if lock_is_stale(&dir) {
                    let _ = std::fs::remove_dir_all(&dir);
                    continue;
                }
                assert!(
                    Instant::now() < deadline,
                    "another cluster test held {} for over {LOCK_WAIT:?}",
                    dir.display()
                );
                thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("creating the lock {}: {e}", dir.display()),
        }
    }
}

fn lock_is_stale(dir: &Path) -> bool {
    let age = std::fs::metadata(dir)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .unwrap_or_default();
    match std::fs::read_to_string(dir.join("pid")) {
        Ok(pid) => !Path::new("/proc").join(pid.trim()).exists() || age > LOCK_STALE,
        // The holder is between creating the directory and writing its pid.
        Err(_) => age > Duration::from_secs(10),
    }
}

impl Drop for ClusterLock {
    fn drop(&mut self) {
        let mine = std::fs::read_to_string(self.dir.join("pid"))
            .is_ok_and(|pid| pid.trim() == std::process::id().to_string());
        if mine {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
