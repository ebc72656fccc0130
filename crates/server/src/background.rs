//! Background work on threads of low CPU priority.
//!
//! Catching a document up and saving its snapshot cost milliseconds of CPU at a time. At normal
//! priority that work takes half of a busy core from the sessions while it runs, and the acks and
//! broadcasts behind it wait. Two classes of threads take it:
//!
//! - [`Priority::Idle`] (Linux `SCHED_IDLE`): runs only in the gaps of the sessions' work. A
//!   session thread that wakes up takes the core back at once; a thread at nice 10 keeps it
//!   for the rest of its time slice (EEVDF's run-to-parity), and a reply waits up to a slice behind
//!   it. Measured on one core, 100 clients at 1000 ops/s, store on disk, 6 interleaved runs
//!   each: p99 broadcast latency 5.3 ms at nice 10, 3.8 ms at `SCHED_IDLE` (medians; it was
//!   lower in each pair). On a saturated core it gets almost nothing (weight 3 against 1024),
//!   so work that someone waits for moves to:
//! - [`Priority::Low`] (nice 10): ~10% of a contended core (weight 110 against 1024) and all
//!   of an idle one. (At nice 0, p99 was 4.0 ms against 3.4 at nice 10.)

use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

/// The nice value of background threads (see the module docs).
const NICE: i32 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// Only when the core has nothing else to do.
    Idle,
    /// Nice 10.
    Low,
}

type Job = Box<dyn FnOnce() + Send>;

/// Each class's threads, one per core the process may run on, shared by every workspace: a
/// server with many busy workspaces queues their work rather than starting a thread for each.
/// Both classes start together on first use, from the caller's thread: a thread started from a
/// `SCHED_IDLE` one would inherit its policy, and could not leave it without privileges.
fn pool(priority: Priority) -> &'static mpsc::Sender<Job> {
    static POOLS: OnceLock<[mpsc::Sender<Job>; 2]> = OnceLock::new();
    let [idle, low] = POOLS.get_or_init(|| [start_pool(Priority::Idle), start_pool(Priority::Low)]);
    match priority {
        Priority::Idle => idle,
        Priority::Low => low,
    }
}

fn start_pool(priority: Priority) -> mpsc::Sender<Job> {
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = std::sync::Arc::new(Mutex::new(queue));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let class = match priority {
        Priority::Idle => "idle",
        Priority::Low => "low",
    };
    for i in 0..threads {
        let queue = queue.clone();
        let spawned = std::thread::Builder::new().name(format!("tandem-{class}-{i}")).spawn(move || {
            lower_priority(priority);
            loop {
                // The lock is held only while waiting for the next job, not while running it.
                let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                match job {
                    // A panic ends this job only (whoever waits for its result sees the channel
                    // closed), not the thread.
                    Ok(job) => drop(std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))),
                    Err(_) => return,
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a background thread");
        }
    }
    jobs
}

/// Runs `work` on a background thread of the given class. It reports its result itself (a
/// channel it owns is closed if it panics, or if no background thread could start).
pub fn spawn(priority: Priority, work: impl FnOnce() + Send + 'static) {
    let _ = pool(priority).send(Box::new(work));
}

#[cfg(target_os = "linux")]
fn lower_priority(priority: Priority) {
    // On Linux a nice value and a policy belong to the calling thread (`who`/`pid` 0), not the
    // whole process. The nice value comes first: if SCHED_IDLE is refused, nice 10 stays.
    // SAFETY: both calls only read their arguments; a failure leaves the priority as is.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, NICE);
        if priority == Priority::Idle {
            let param = libc::sched_param { sched_priority: 0 };
            libc::sched_setscheduler(0, libc::SCHED_IDLE, &param);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_: Priority) {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Field `n` (1-based, as in proc(5)) of the calling thread's stat line.
    fn own_stat(n: usize) -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        // The command name (field 2) may hold spaces; the fields after it are plain.
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        after_name.split(' ').nth(n - 3).unwrap().parse().unwrap()
    }
    const NICE_FIELD: usize = 19;
    const POLICY_FIELD: usize = 41;

    fn run_on(priority: Priority) -> (i64, i64) {
        let (tx, rx) = std::sync::mpsc::channel();
        spawn(priority, move || tx.send((own_stat(NICE_FIELD), own_stat(POLICY_FIELD))).unwrap());
        rx.recv().unwrap()
    }

    #[test]
    fn work_runs_at_its_class_priority_and_the_caller_keeps_its_own() {
        let before = (own_stat(NICE_FIELD), own_stat(POLICY_FIELD));
        let nice = NICE as i64;
        // A caller already nicer than NICE may not be able to go back up to it (unprivileged).
        let expected_nice = |seen: i64| seen == nice || (before.0 > nice && seen == before.0);
        let (seen, policy) = run_on(Priority::Low);
        assert!(expected_nice(seen) && policy == libc::SCHED_OTHER as i64, "low: nice {seen}, policy {policy}");
        let (seen, policy) = run_on(Priority::Idle);
        assert!(expected_nice(seen) && policy == libc::SCHED_IDLE as i64, "idle: nice {seen}, policy {policy}");
        assert_eq!((own_stat(NICE_FIELD), own_stat(POLICY_FIELD)), before, "only background threads are lowered");
    }

    #[test]
    fn a_panicking_job_ends_only_itself() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        spawn(Priority::Idle, move || {
            let _held = tx;
            panic!("a job that fails");
        });
        assert!(rx.recv().is_err(), "its channel is closed");
        assert_eq!(run_on(Priority::Idle).1, libc::SCHED_IDLE as i64, "the pool still runs jobs");
    }
}
