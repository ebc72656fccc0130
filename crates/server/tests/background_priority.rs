//! Its own test binary, so that nothing has started the background threads before: a job that
//! moves on from an idle thread (as a hurried catch-up does) must run at nice 10, not at the
//! idle policy a thread started from there would inherit (and could not leave unprivileged).
#![cfg(target_os = "linux")]

use tandem_server::background::{spawn, Priority};

/// The scheduling policy of the calling thread (field 41 of proc(5)'s stat line).
fn own_policy() -> i64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    stat.rsplit(')').next().unwrap().split_whitespace().nth(38).unwrap().parse().unwrap()
}

#[test]
fn work_handed_on_from_an_idle_thread_runs_at_the_low_priority() {
    let (tx, rx) = std::sync::mpsc::channel();
    spawn(Priority::Idle, move || {
        let idle = own_policy();
        spawn(Priority::Low, move || tx.send((idle, own_policy())).unwrap());
    });
    let (idle, low) = rx.recv().unwrap();
    assert_eq!(idle, libc::SCHED_IDLE as i64, "the first job runs at the idle policy");
    assert_eq!(low, libc::SCHED_OTHER as i64, "the job it hands on does not");
}
