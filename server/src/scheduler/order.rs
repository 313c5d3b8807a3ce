//! `preserve_ordering`: answers leave in arrival order even when instances finish out of order.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Holds back answers until every earlier request has been answered. With ordering off, every
/// answer passes straight through.
pub struct Orderer<D> {
    state: Option<Mutex<State<D>>>,
}

struct State<D> {
    next: u64,
    waiting: BTreeMap<u64, Option<D>>,
}

impl<D> Orderer<D> {
    pub fn new(preserve: bool) -> Orderer<D> {
        Orderer {
            state: preserve.then(|| {
                Mutex::new(State {
                    next: 0,
                    waiting: BTreeMap::new(),
                })
            }),
        }
    }

    /// Records that request `seq` is finished (`None`: it needs no answer, e.g. its caller went
    /// away) and passes the answers that may now go to `send`, in order. With ordering on,
    /// `send` runs under the orderer's lock, so that two threads releasing consecutive answers
    /// cannot send them out of order. Every sequence number must be completed exactly once.
    pub fn complete(&self, seq: u64, answer: Option<D>, mut send: impl FnMut(D)) {
        let Some(state) = &self.state else {
            answer.into_iter().for_each(send);
            return;
        };
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.waiting.insert(seq, answer);
        loop {
            let next = s.next;
            match s.waiting.remove(&next) {
                Some(a) => {
                    a.into_iter().for_each(&mut send);
                    s.next += 1;
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn released<D>(o: &Orderer<D>, seq: u64, answer: Option<D>) -> Vec<D> {
        let mut out = Vec::new();
        o.complete(seq, answer, |d| out.push(d));
        out
    }

    #[test]
    fn holds_back_until_earlier_answers_are_in() {
        let o = Orderer::new(true);
        assert!(released(&o, 1, Some("b")).is_empty());
        assert!(released(&o, 2, None).is_empty());
        assert_eq!(released(&o, 0, Some("a")), vec!["a", "b"]);
        assert_eq!(released(&o, 3, Some("d")), vec!["d"]);
    }

    #[test]
    fn passes_through_when_ordering_is_off() {
        let o = Orderer::new(false);
        assert_eq!(released(&o, 5, Some(1)), vec![1]);
        assert!(released(&o, 0, None::<i32>).is_empty());
    }

    #[test]
    fn answers_released_by_two_threads_leave_in_order() {
        // Thread A releases 0; thread B completes 1 meanwhile. With the send under the lock,
        // the sink always sees 0 before 1.
        for _ in 0..200 {
            let o = std::sync::Arc::new(Orderer::new(true));
            let sink = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let (o2, sink2) = (o.clone(), sink.clone());
            let b = std::thread::spawn(move || {
                o2.complete(1, Some(1), |d| sink2.lock().expect("sink").push(d))
            });
            o.complete(0, Some(0), |d| sink.lock().expect("sink").push(d));
            b.join().expect("thread");
            assert_eq!(*sink.lock().expect("sink"), vec![0, 1]);
        }
    }
}
