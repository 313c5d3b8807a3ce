//! Trace and span ids, W3C `traceparent`, and wall-clock times of `Instant`s.

use ring::rand::{SecureRandom, SystemRandom};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub type TraceId = [u8; 16];
pub type SpanId = [u8; 8];

/// The caller's span a request's root joins (`traceparent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    pub trace_id: TraceId,
    pub span_id: SpanId,
}

/// Parses `00-<32 hex>-<16 hex>-<2 hex>` (any version but `ff`, later versions may append
/// fields). Anything malformed, or an all-zero id, is no parent at all.
pub fn parse_traceparent(value: &str) -> Option<Parent> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    let (trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?);
    if version.len() != 2 || version.eq_ignore_ascii_case("ff") || hex::<1>(version).is_none() {
        return None;
    }
    if version == "00" && parts.next().is_some() {
        return None;
    }
    hex::<1>(flags)?;
    let trace_id = hex::<16>(trace)?;
    let span_id = hex::<8>(span)?;
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    Some(Parent { trace_id, span_id })
}

/// Lower-case hex digits of exactly `N` bytes.
fn hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        let (hi, lo) = (digit(pair[0])?, digit(pair[1])?);
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// Hex text of an id, as OTLP's JSON encoding writes it.
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Random ids (never all zero).
pub struct Ids(SystemRandom);

impl Ids {
    pub fn new() -> Ids {
        Ids(SystemRandom::new())
    }

    fn fill<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        if self.0.fill(&mut out).is_err() || out == [0; N] {
            // The system's generator failed: the clock still tells traces apart.
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos())
                .to_le_bytes();
            for (o, n) in out.iter_mut().zip(nanos.iter().cycle()) {
                *o = *n;
            }
            out[0] |= 1;
        }
        out
    }

    pub fn trace(&self) -> TraceId {
        self.fill()
    }

    pub fn span(&self) -> SpanId {
        self.fill()
    }
}

impl Default for Ids {
    fn default() -> Ids {
        Ids::new()
    }
}

/// One (wall clock, monotonic clock) pair: an `Instant` becomes nanoseconds since the Unix
/// epoch without asking the wall clock again.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall_ns: u64,
    at: Instant,
}

impl Clock {
    pub fn now() -> Clock {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Clock {
            wall_ns: wall,
            at: Instant::now(),
        }
    }

    /// Nanoseconds since the Unix epoch at `t`.
    pub fn unix_ns(&self, t: Instant) -> u64 {
        let nanos = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        match t.checked_duration_since(self.at) {
            Some(after) => self.wall_ns.saturating_add(nanos(after)),
            None => self
                .wall_ns
                .saturating_sub(nanos(self.at.saturating_duration_since(t))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn traceparent_is_read_and_malformed_ones_ignored() {
        let p = parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
            .expect("valid");
        assert_eq!(to_hex(&p.trace_id), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(to_hex(&p.span_id), "b7ad6b7169203331");
        for bad in [
            "",
            "garbage",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319z-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333é-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
    }

    #[test]
    fn ids_are_random_and_not_zero() {
        let ids = Ids::new();
        let (a, b) = (ids.trace(), ids.trace());
        assert_ne!(a, b);
        assert_ne!(ids.span(), [0; 8]);
    }

    #[test]
    fn instants_map_onto_the_wall_clock() {
        let c = Clock::now();
        let later = c.at + Duration::from_micros(5);
        assert_eq!(c.unix_ns(later) - c.unix_ns(c.at), 5_000);
        if let Some(earlier) = c.at.checked_sub(Duration::from_micros(3)) {
            assert_eq!(c.unix_ns(c.at) - c.unix_ns(earlier), 3_000);
        }
    }
}
