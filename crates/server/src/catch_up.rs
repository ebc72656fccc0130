//! Catching the Automerge document up on a background thread, and saving it as the workspace's
//! snapshot (see document.rs for why local changes are merged in batches).
//!
//! The work starts at [`Priority::Idle`], in the gaps of the sessions' work (see background.rs).
//! A saturated core gives it almost nothing, so it is hurried once someone waits for it (a
//! reader of the history, a delete, the actor stopping) or once it has been away for
//! `HURRY_AFTER`: it moves to a [`Priority::Low`] thread before it applies the changes, and
//! again before the save. The two steps are not split further: each call that applies changes
//! walks the whole document, which is why they are batched in the first place. So a reader that
//! comes while the changes are being applied waits for that step at the priority it runs at,
//! which is slow only while every core is busy.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use automerge::{Automerge, AutomergeError, Change};
use tokio::sync::oneshot;
use tracing::{debug, warn};

use crate::background::{self, Priority};
use crate::store::Store;

/// How long a catch-up may take in the gaps before it is hurried.
const HURRY_AFTER: Duration = Duration::from_secs(1);

/// The document back from a catch-up, and whether applying the changes worked.
pub type CaughtUp = (Automerge, Result<(), AutomergeError>);

/// The snapshot to save once caught up: it covers the changes stored up to `upto`.
pub struct Compaction {
    pub store: Store,
    pub workspace: String,
    pub upto: u64,
    pub runtime: tokio::runtime::Handle,
}

/// A catch-up on its way, as the actor holds it.
pub struct CatchUp {
    done: oneshot::Receiver<CaughtUp>,
    hurried: Arc<AtomicBool>,
    started: Instant,
}

impl CatchUp {
    pub fn start(doc: Automerge, changes: Vec<Change>, compaction: Option<Compaction>) -> Self {
        let (tx, done) = oneshot::channel();
        let hurried = Arc::new(AtomicBool::new(false));
        let job = Job { doc, changes, compaction, hurried: hurried.clone(), done: tx };
        background::spawn(Priority::Idle, move || job.run(Priority::Idle));
        CatchUp { done, hurried, started: Instant::now() }
    }

    /// The document, once the catch-up is over: `Some(None)` if its thread dropped it (a panic).
    /// Still running and away for `HURRY_AFTER`: hurried.
    pub fn try_take(&mut self) -> Option<Option<CaughtUp>> {
        match self.done.try_recv() {
            Ok(done) => Some(Some(done)),
            Err(oneshot::error::TryRecvError::Closed) => Some(None),
            Err(oneshot::error::TryRecvError::Empty) => {
                if self.started.elapsed() >= HURRY_AFTER {
                    self.hurried.store(true, Ordering::Relaxed);
                }
                None
            }
        }
    }

    /// Hurries the work, and waits for the document. `None` if its thread dropped it (a panic).
    pub fn finish(self) -> impl std::future::Future<Output = Option<CaughtUp>> {
        self.hurried.store(true, Ordering::Relaxed);
        async move { self.done.await.ok() }
    }
}

struct Job {
    doc: Automerge,
    /// Taken once applied.
    changes: Vec<Change>,
    compaction: Option<Compaction>,
    hurried: Arc<AtomicBool>,
    done: oneshot::Sender<CaughtUp>,
}

impl Job {
    fn run(mut self, priority: Priority) {
        let mut applied = Ok(());
        if !self.changes.is_empty() {
            if self.moves_up(priority) {
                return background::spawn(Priority::Low, move || self.run(Priority::Low));
            }
            applied = self.doc.apply_changes(std::mem::take(&mut self.changes));
        }
        if applied.is_ok() && self.compaction.is_some() {
            if self.moves_up(priority) {
                return background::spawn(Priority::Low, move || self.run(Priority::Low));
            }
            let Compaction { store, workspace, upto, runtime } = self.compaction.take().expect("checked");
            let saved = self.doc.save();
            // The write itself at normal priority: it holds the store's write lock, which every
            // commit waits for.
            let write = runtime.spawn_blocking(move || match store.compact(&workspace, upto, &saved) {
                Ok(()) => debug!(workspace = %workspace, upto, "compacted"),
                // Nothing lost: the changes stay stored individually until the next compaction.
                Err(e) => warn!(workspace = %workspace, error = %e, "compaction failed (changes stay stored individually)"),
            });
            let _ = runtime.block_on(write);
        }
        let _ = self.done.send((self.doc, applied));
    }

    fn moves_up(&self, priority: Priority) -> bool {
        priority == Priority::Idle && self.hurried.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{ReadDoc, ROOT};

    use super::*;

    /// `n` one-key changes, as a workspace's writes make them.
    fn changes(n: usize) -> Vec<Change> {
        let mut doc = Automerge::new();
        for i in 0..n {
            let mut tx = doc.transaction();
            tx.put(ROOT, format!("k{}", i % 500), i as i64).unwrap();
            tx.commit();
        }
        doc.get_changes(&[])
    }

    /// Tests that occupy the idle threads take turns: two holding some of them each, and
    /// waiting for the rest, would wait for each other.
    static TAKING_TURNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    /// Occupies every idle thread until the returned senders are dropped, so a catch-up started
    /// meanwhile waits in the queue: whatever hurries it does so before it starts.
    fn hold_idle_threads() -> Vec<std::sync::mpsc::Sender<()>> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (started_tx, started) = std::sync::mpsc::channel();
        let holds = (0..threads)
            .map(|_| {
                let (hold, held) = std::sync::mpsc::channel::<()>();
                let started_tx = started_tx.clone();
                background::spawn(Priority::Idle, move || {
                    started_tx.send(()).unwrap();
                    let _ = held.recv();
                });
                hold
            })
            .collect();
        (0..threads).for_each(|_| started.recv().unwrap());
        holds
    }

    /// CPU time (clock ticks) of this process's threads whose name starts with `prefix`.
    fn cpu_ticks_of_threads(prefix: &str) -> u64 {
        let mut ticks = 0;
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
            let name = &stat[stat.find('(').unwrap() + 1..stat.rfind(')').unwrap()];
            if name.starts_with(prefix) {
                let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
                // utime and stime: fields 14 and 15 of proc(5), counted from the state (3).
                ticks += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
            }
        }
        ticks
    }

    /// A catch-up of 2000 changes, started while the idle threads are held; `meanwhile` may
    /// hurry it before they are let go. Returns the CPU ticks it took on idle and on low
    /// threads, told by the kernel's accounting per thread.
    async fn catch_up_counted(meanwhile: impl AsyncFnOnce(&mut CatchUp) -> bool) -> (u64, u64) {
        let _turn = TAKING_TURNS.lock().await;
        let changes = changes(2000);
        let (idle, low) = (cpu_ticks_of_threads("tandem-idle"), cpu_ticks_of_threads("tandem-low"));
        let holds = hold_idle_threads();
        let mut catch_up = CatchUp::start(Automerge::new(), changes, None);
        let finish = meanwhile(&mut catch_up).await;
        let done = if finish {
            let waiting = catch_up.finish();
            drop(holds);
            waiting.await
        } else {
            // Not through `try_take`, which would hurry a job still running after a second.
            drop(holds);
            (&mut catch_up.done).await.ok()
        };
        let (doc, applied) = done.expect("the job sent the document back");
        applied.unwrap();
        assert_eq!(doc.get_changes(&[]).len(), 2000, "every change applied");
        assert_eq!(doc.get(ROOT, "k499").unwrap().unwrap().0.as_i64(), Some(1999));
        (cpu_ticks_of_threads("tandem-idle") - idle, cpu_ticks_of_threads("tandem-low") - low)
    }

    #[tokio::test]
    async fn a_catch_up_nobody_waits_for_works_in_the_gaps() {
        let (idle, low) = catch_up_counted(async |catch_up: &mut CatchUp| {
            assert!(catch_up.try_take().is_none(), "still queued");
            false
        })
        .await;
        assert!(idle >= 5 && low * 4 < idle, "{idle} ticks on idle threads, {low} on low ones");
    }

    #[tokio::test]
    async fn waiting_for_a_catch_up_hurries_it_to_a_low_priority_thread() {
        let (idle, low) = catch_up_counted(async |_: &mut CatchUp| true).await;
        assert!(low >= 5 && idle * 4 < low, "{idle} ticks on idle threads, {low} on low ones");
    }

    #[tokio::test]
    async fn a_catch_up_away_too_long_is_hurried_when_next_looked_at() {
        let (idle, low) = catch_up_counted(async |catch_up: &mut CatchUp| {
            tokio::time::sleep(HURRY_AFTER + Duration::from_millis(50)).await;
            assert!(catch_up.try_take().is_none(), "still queued");
            false
        })
        .await;
        assert!(low >= 5 && idle * 4 < low, "{idle} ticks on idle threads, {low} on low ones");
    }
}
