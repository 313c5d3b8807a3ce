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
    /// away) and returns the answers that may now be sent, in order. Every sequence number must
    /// be completed exactly once.
    pub fn complete(&self, seq: u64, answer: Option<D>) -> Vec<D> {
        let Some(state) = &self.state else {
            return answer.into_iter().collect();
        };
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.waiting.insert(seq, answer);
        let mut out = Vec::new();
        loop {
            let next = s.next;
            match s.waiting.remove(&next) {
                Some(a) => {
                    out.extend(a);
                    s.next += 1;
                }
                None => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_back_until_earlier_answers_are_in() {
        let o = Orderer::new(true);
        assert!(o.complete(1, Some("b")).is_empty());
        assert!(o.complete(2, None).is_empty());
        assert_eq!(o.complete(0, Some("a")), vec!["a", "b"]);
        assert_eq!(o.complete(3, Some("d")), vec!["d"]);
    }

    #[test]
    fn passes_through_when_ordering_is_off() {
        let o = Orderer::new(false);
        assert_eq!(o.complete(5, Some(1)), vec![1]);
        assert!(o.complete(0, None::<i32>).is_empty());
    }
}
