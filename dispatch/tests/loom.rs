//! Every interleaving of submitters, instance threads and the timekeeper, explored by loom: no
//! submitted item is ever left waiting while an instance sleeps (a lost wake-up shows up as a
//! deadlock, which loom reports), none runs twice, and every thread exits after `close`.
//!
//! `cargo test -p osprey-dispatch --features loom --release --test loom`
#![cfg(feature = "loom")]

use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use osprey_dispatch::{Dispatcher, Poll, Source};
use std::collections::VecDeque;
use std::time::Instant;

/// Items are (id, expires); a batch takes up to `max` items at once.
struct Fifo {
    items: VecDeque<(u32, bool)>,
    max: usize,
}

impl Source for Fifo {
    type Batch = Vec<u32>;
    fn poll(&mut self, _now: Instant) -> Poll<Vec<u32>> {
        if self.items.is_empty() {
            return Poll::Empty;
        }
        let n = self.items.len().min(self.max);
        Poll::Ready(self.items.drain(..n).map(|(id, _)| id).collect())
    }
    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// What finished, and a condition the test's main thread waits on until all of it has.
#[derive(Default)]
struct Done {
    ids: Mutex<Vec<u32>>,
    changed: Condvar,
}

impl Done {
    fn add(&self, ids: impl IntoIterator<Item = u32>) {
        self.ids.lock().expect("done").extend(ids);
        self.changed.notify_all();
    }
    fn wait_for(&self, n: usize) -> Vec<u32> {
        let mut ids = self.ids.lock().expect("done");
        while ids.len() < n {
            ids = self.changed.wait(ids).expect("done");
        }
        ids.clone()
    }
}

fn submit(d: &Dispatcher<Fifo>, id: u32, expires: bool) {
    let r: Result<(), ()> = d.submit(|f| {
        f.items.push_back((id, expires));
        Ok(((), expires.then(Instant::now)))
    });
    r.expect("submitted");
}

/// A dispatcher over an empty [`Fifo`] of batches of up to `max`, with `n` instance threads.
struct Rig {
    d: Arc<Dispatcher<Fifo>>,
    done: Arc<Done>,
    workers: Vec<thread::JoinHandle<()>>,
}

impl Rig {
    fn new(max: usize, n: usize) -> Rig {
        let d = Arc::new(Dispatcher::new(Fifo {
            items: VecDeque::new(),
            max,
        }));
        let done = Arc::new(Done::default());
        let workers = (0..n)
            .map(|_| {
                let (d, done) = (d.clone(), done.clone());
                thread::spawn(move || {
                    while let Some(batch) = d.next() {
                        done.add(batch);
                    }
                })
            })
            .collect();
        Rig { d, done, workers }
    }

    /// Closes the dispatcher, joins every instance and returns what ran, sorted.
    fn close(self) -> Vec<u32> {
        self.d.close();
        for w in self.workers {
            w.join().expect("instance");
        }
        let mut ids = self.done.ids.lock().expect("done").clone();
        ids.sort_unstable();
        ids
    }
}

/// Two submitters racing two idle instances: both items run exactly once, before any close.
#[test]
fn no_lost_wakeup_with_two_instances() {
    loom::model(|| {
        let rig = Rig::new(1, 2);
        let submitters: Vec<_> = (0..2)
            .map(|id| {
                let d = rig.d.clone();
                thread::spawn(move || submit(&d, id, false))
            })
            .collect();
        for s in submitters {
            s.join().expect("submitter");
        }
        // Both ran before the close (a lost wake-up would deadlock here).
        rig.done.wait_for(2);
        assert_eq!(rig.close(), vec![0, 1]);
    });
}

/// One instance, arrivals while it runs a batch (it takes the next one itself), batches of two.
#[test]
fn busy_instance_takes_what_arrived_meanwhile() {
    loom::model(|| {
        let rig = Rig::new(2, 1);
        submit(&rig.d, 0, false);
        let late = {
            let d = rig.d.clone();
            thread::spawn(move || {
                submit(&d, 1, false);
                submit(&d, 2, false);
            })
        };
        late.join().expect("submitter");
        rig.done.wait_for(3);
        assert_eq!(rig.close(), vec![0, 1, 2]);
    });
}

/// The timekeeper hears of a deadline submitted while it sleeps and answers it while no
/// instance exists to take it; close ends it.
#[test]
fn timekeeper_is_woken_by_a_new_deadline() {
    loom::model(|| {
        let rig = Rig::new(1, 0);
        let timer = {
            let (d, done) = (rig.d.clone(), rig.done.clone());
            thread::spawn(move || {
                d.run_timer(|f, _now| {
                    let (gone, keep): (Vec<_>, Vec<_>) = f.items.drain(..).partition(|i| i.1);
                    f.items = keep.into();
                    done.add(gone.into_iter().map(|i| i.0));
                    None
                })
            })
        };
        submit(&rig.d, 7, true);
        assert_eq!(rig.done.wait_for(1), vec![7]);
        rig.d.close();
        timer.join().expect("timer");
    });
}

/// Closing while items are queued: instances finish them all, then exit.
#[test]
fn close_drains_then_stops() {
    loom::model(|| {
        let rig = Rig::new(1, 2);
        submit(&rig.d, 0, false);
        submit(&rig.d, 1, false);
        assert_eq!(rig.close(), vec![0, 1]);
    });
}
