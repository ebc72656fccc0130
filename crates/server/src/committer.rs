//! The store's writer thread: every workspace's group commits go through it.
//!
//! Batches that arrive while a commit is on its way to disk go into the next redb transaction
//! together, whichever workspaces they come from, so one fsync serves them all: redb takes one
//! writer at a time anyway, and separate commits would each wait for the disk in turn. One
//! long-lived thread also costs less per commit than Tokio's blocking pool, whose threads hand
//! work to each other through a shared lock.

use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::store::{CommitBatch, Store, StoreError};

/// Batches written in one transaction at most (bounds what one failure takes with it).
const MAX_GROUP: usize = 64;

struct Job {
    workspace: String,
    batch: CommitBatch,
    done: oneshot::Sender<Result<(), StoreError>>,
}

pub struct Committer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Committer {
    pub fn start(store: Store) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new().name("tandem-commit".into()).spawn(move || {
            while let Ok(first) = queue.recv() {
                let mut group = vec![first];
                group.extend(queue.try_iter().take(MAX_GROUP - 1));
                let batches: Vec<(&str, &CommitBatch)> = group.iter().map(|j| (j.workspace.as_str(), &j.batch)).collect();
                let result = store.commit_all(&batches);
                answer(group, result);
            }
        })?;
        Ok(Committer { jobs: Some(jobs), thread: Some(thread) })
    }

    /// Writes one workspace's batch durably; returns once it is on disk.
    pub async fn commit(&self, workspace: &str, batch: CommitBatch) -> Result<(), StoreError> {
        let (done, answer) = oneshot::channel();
        let job = Job { workspace: workspace.to_owned(), batch, done };
        let stopped = || StoreError::Stopped { workspace: workspace.to_owned() };
        self.jobs.as_ref().ok_or_else(stopped)?.send(job).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// A failure is every batch's in the group: the first gets the error itself, the others its
/// message under their own workspace's name.
fn answer(group: Vec<Job>, result: Result<(), StoreError>) {
    match result {
        Ok(()) => group.into_iter().for_each(|j| drop(j.done.send(Ok(())))),
        Err(e) => {
            let message = e.to_string();
            let mut error = Some(e);
            for j in group {
                let e = error.take().unwrap_or_else(|| StoreError::Group { workspace: j.workspace, message: message.clone() });
                let _ = j.done.send(Err(e));
            }
        }
    }
}

impl Drop for Committer {
    /// Waits for the thread, so the database is closed once the last handle to it is gone.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(seq: u64, bytes: &[u8]) -> CommitBatch {
        CommitBatch { create: Some(1), changes: vec![(seq, bytes.to_vec())], ..Default::default() }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_commits_of_many_workspaces_are_each_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let committer = std::sync::Arc::new(Committer::start(store.clone()).unwrap());
        let mut tasks = Vec::new();
        for w in 0..20 {
            let committer = committer.clone();
            tasks.push(tokio::spawn(async move {
                for seq in 0..5 {
                    committer.commit(&format!("w{w}"), batch(seq, format!("{w}-{seq}").as_bytes())).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        for w in 0..20 {
            let stored = store.load_workspace(&format!("w{w}")).unwrap().unwrap();
            let changes: Vec<(u64, Vec<u8>)> = (0..5).map(|seq| (seq, format!("{w}-{seq}").into_bytes())).collect();
            assert_eq!(stored.changes, changes, "workspace w{w}");
        }
    }

    #[test]
    fn a_failed_group_fails_every_batch_in_it_under_its_own_workspace() {
        let (a, a_answer) = oneshot::channel();
        let (b, b_answer) = oneshot::channel();
        let group = vec![
            Job { workspace: "a".into(), batch: CommitBatch::default(), done: a },
            Job { workspace: "b".into(), batch: CommitBatch::default(), done: b },
        ];
        answer(group, Err(StoreError::Injected));
        assert!(matches!(a_answer.blocking_recv().unwrap(), Err(StoreError::Injected)));
        match b_answer.blocking_recv().unwrap() {
            Err(StoreError::Group { workspace, message }) => {
                assert_eq!(workspace, "b");
                assert_eq!(message, StoreError::Injected.to_string());
            }
            other => panic!("expected a group error for b, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn commits_after_the_thread_stopped_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut committer = Committer::start(Store::open(dir.path()).unwrap()).unwrap();
        drop(committer.jobs.take());
        let err = committer.commit("w", batch(0, b"x")).await.unwrap_err();
        assert!(matches!(err, StoreError::Stopped { ref workspace } if workspace == "w"), "{err}");
    }
}
