//! Catching the Automerge document up on a background thread, and saving it as the workspace's
//! snapshot (see document.rs for why local changes are merged in batches).
//!
//! The work starts at [`Priority::Idle`], in the gaps of the sessions' work (see background.rs).
//! A saturated core gives it almost nothing, so it is hurried once someone waits for it (a
//! reader of the history, a delete, the actor stopping) or once it has been away for
//! [`HURRY_AFTER`]: it moves to a [`Priority::Low`] thread before its next chunk of changes or
//! before the save. What a waiting reader sits behind is then one chunk at most, and the
//! changes waiting for the next catch-up stay bounded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use automerge::{Automerge, AutomergeError, Change};
use tokio::sync::oneshot;
use tracing::{debug, warn};

use crate::background::{self, Priority};
use crate::store::Store;

/// How long a catch-up may take in the gaps before it is hurried.
pub const HURRY_AFTER: Duration = Duration::from_secs(1);

/// Changes applied between two looks at whether the job is hurried: a few milliseconds of work
/// on a document of a few thousand ops.
const CHUNK: usize = 64;

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
        let job = Job { doc, changes: changes.into_iter(), compaction, hurried: hurried.clone(), done: tx };
        background::spawn(Priority::Idle, move || job.run(Priority::Idle));
        CatchUp { done, hurried, started: Instant::now() }
    }

    /// The document, once the catch-up is over: `Some(None)` if its thread dropped it (a panic).
    /// Still running and away for [`HURRY_AFTER`]: hurried.
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

    /// Waits for the document, hurrying the work. `None` if its thread dropped it (a panic).
    pub async fn finish(self) -> Option<CaughtUp> {
        self.hurried.store(true, Ordering::Relaxed);
        self.done.await.ok()
    }
}

struct Job {
    doc: Automerge,
    changes: std::vec::IntoIter<Change>,
    compaction: Option<Compaction>,
    hurried: Arc<AtomicBool>,
    done: oneshot::Sender<CaughtUp>,
}

impl Job {
    fn run(mut self, priority: Priority) {
        let mut applied = Ok(());
        while self.changes.len() > 0 {
            if self.moves_up(priority) {
                return background::spawn(Priority::Low, move || self.run(Priority::Low));
            }
            let chunk: Vec<Change> = self.changes.by_ref().take(CHUNK).collect();
            applied = self.doc.apply_changes(chunk);
            if applied.is_err() {
                break;
            }
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
    use std::sync::atomic::AtomicBool;

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

    /// With every core busy at normal priority, the gaps give a catch-up nothing: only being
    /// hurried (moving to nice 10) lets it finish: ~2.5 s here in a debug build; unhurried, it
    /// had not finished after 60.
    #[tokio::test]
    async fn a_catch_up_someone_waits_for_finishes_on_a_saturated_machine() {
        let changes = changes(1000);
        let stop = Arc::new(AtomicBool::new(false));
        let busy: Vec<_> = (0..std::thread::available_parallelism().map_or(1, |n| n.get()))
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        let started = Instant::now();
        let catch_up = CatchUp::start(Automerge::new(), changes, None);
        let done = tokio::time::timeout(Duration::from_secs(60), catch_up.finish()).await;
        stop.store(true, Ordering::Relaxed);
        busy.into_iter().for_each(|t| t.join().unwrap());
        let (doc, applied) = done.expect("hurried, it finishes").expect("the job kept the document");
        applied.unwrap();
        assert_eq!(doc.get_changes(&[]).len(), 1000, "every change applied");
        assert_eq!(doc.get(ROOT, "k499").unwrap().unwrap().0.as_i64(), Some(999));
        eprintln!("caught up in {:?} on a saturated machine", started.elapsed());
    }
}
