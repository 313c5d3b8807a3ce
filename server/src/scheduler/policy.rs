//! Batching and queueing policy, read once from a model's configuration.

use crate::config::ModelConfig;
use osprey_protocol::grpc::inference::model_queue_policy::TimeoutAction;
use osprey_protocol::grpc::inference::ModelQueuePolicy;
use osprey_protocol::{ParamValue, Parameters, ProtocolError};
use std::time::Duration;

/// What happens to a request that outlives its timeout in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnTimeout {
    /// Answer at once with UNAVAILABLE.
    Reject,
    /// Keep it, behind every request that has not timed out.
    Delay,
}

/// One priority level's queue policy.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuePolicy {
    /// Most requests waiting at this level.
    pub max_queue_size: usize,
    pub default_timeout: Option<Duration>,
    pub on_timeout: OnTimeout,
    /// Whether a request's `timeout` parameter replaces the default.
    pub allow_timeout_override: bool,
}

/// Where one request queues, parsed from its parameters at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Placement {
    /// Priority level, as an index into [`BatchPolicy::levels`].
    pub level: usize,
    /// How long it may wait in the queue.
    pub timeout: Option<Duration>,
}

/// How a model's requests are queued and merged.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchPolicy {
    /// Most rows in one execution; 1 request per execution when batching is off.
    pub max_batch_size: usize,
    /// Whether requests are merged (`dynamic_batching` present and `max_batch_size` > 0).
    pub dynamic: bool,
    /// Preferred batch sizes, ascending.
    pub preferred: Vec<usize>,
    pub max_queue_delay: Duration,
    pub preserve_ordering: bool,
    /// One policy per priority level; level 1 (index 0) runs first.
    pub levels: Vec<QueuePolicy>,
    /// Index into `levels` for requests without a `priority` parameter.
    pub default_level: usize,
    /// Inputs padded per batch (`stages.batch_pad`) and their pad values: requests that differ
    /// only in these inputs' variable dimensions share a batch.
    pub pads: Vec<(String, f64)>,
    /// The predictor's input names in the configuration's order (the batching key's order).
    pub inputs: Vec<String>,
    /// A request that arrives to an empty queue and an idle instance runs on the submitting
    /// thread when the model's last execution took at most this long (zero: never). See
    /// [`INLINE_MAX`].
    pub inline_max: Duration,
}

/// The longest execution that runs on the thread that received the request (a network thread)
/// instead of being handed to an instance thread and back: two thread wake-ups cost more than
/// a model this quick, and a network thread held this long does not starve its other
/// connections. Only where batching could not merge the request with anything anyway: no
/// `max_queue_delay_microseconds`, no `preserve_ordering`.
pub const INLINE_MAX: Duration = Duration::from_micros(200);

fn queue_policy(p: Option<&ModelQueuePolicy>, cap: usize) -> QueuePolicy {
    let p = p.cloned().unwrap_or_default();
    let size = usize::try_from(p.max_queue_size).unwrap_or(0);
    QueuePolicy {
        // 0 means "unbounded" to Triton; memory stays bounded here by the server's cap.
        max_queue_size: if size == 0 { cap } else { size },
        default_timeout: (p.default_timeout_microseconds > 0)
            .then(|| Duration::from_micros(p.default_timeout_microseconds)),
        on_timeout: if p.timeout_action == TimeoutAction::Delay as i32 {
            OnTimeout::Delay
        } else {
            OnTimeout::Reject
        },
        allow_timeout_override: p.allow_timeout_override,
    }
}

impl BatchPolicy {
    /// The policy a (completed) configuration describes. `queue_cap` bounds every queue whose
    /// configuration leaves it unbounded.
    pub fn from_config(config: &ModelConfig, queue_cap: usize) -> BatchPolicy {
        use osprey_protocol::grpc::inference::model_config::SchedulingChoice;
        let db = match &config.scheduling_choice {
            Some(SchedulingChoice::DynamicBatching(db)) => Some(db.clone()),
            _ => None,
        };
        let max_batch_size = usize::try_from(config.max_batch_size).unwrap_or(0);
        let dynamic = db.is_some() && max_batch_size > 0;
        let db = db.unwrap_or_default();
        let mut preferred: Vec<usize> = db
            .preferred_batch_size
            .iter()
            .filter_map(|&p| usize::try_from(p).ok())
            .filter(|&p| p > 0 && p <= max_batch_size)
            .collect();
        preferred.sort_unstable();
        preferred.dedup();
        let n_levels = usize::try_from(db.priority_levels).unwrap_or(0).max(1);
        let default_policy = queue_policy(db.default_queue_policy.as_ref(), queue_cap);
        let levels = (1..=n_levels as u64)
            .map(|level| match db.priority_queue_policy.get(&level) {
                Some(p) => queue_policy(Some(p), queue_cap),
                None => default_policy.clone(),
            })
            .collect();
        let default_level = usize::try_from(db.default_priority_level).unwrap_or(0);
        BatchPolicy {
            max_batch_size: max_batch_size.max(1),
            dynamic,
            preferred,
            max_queue_delay: Duration::from_micros(db.max_queue_delay_microseconds),
            preserve_ordering: db.preserve_ordering,
            levels,
            default_level: if (1..=n_levels).contains(&default_level) {
                default_level - 1
            } else {
                n_levels - 1
            },
            pads: config
                .stages
                .iter()
                .flat_map(|s| &s.batch_pad)
                .map(|p| (p.input.clone(), p.value))
                .collect(),
            inputs: config.input.iter().map(|i| i.name.clone()).collect(),
            inline_max: if db.preserve_ordering || (dynamic && db.max_queue_delay_microseconds > 0)
            {
                Duration::ZERO
            } else {
                INLINE_MAX
            },
        }
    }

    /// Whether any request can have a queue timeout (a default, or an allowed override).
    pub fn has_timeouts(&self) -> bool {
        self.levels
            .iter()
            .any(|l| l.default_timeout.is_some() || l.allow_timeout_override)
    }

    /// The priority level and queue timeout for a request, from its `priority` and `timeout`
    /// (microseconds) parameters.
    pub fn placement(&self, params: &Parameters) -> Result<Placement, ProtocolError> {
        let level = match params.get("priority") {
            None => self.default_level,
            Some(v) => match v.as_u64() {
                Some(0) => self.default_level,
                Some(p) if (p as usize) <= self.levels.len() => p as usize - 1,
                _ => {
                    return Err(ProtocolError::BadParameter {
                        name: "priority".into(),
                        reason: format!(
                            "must be an integer from 0 to {} (the model's priority_levels)",
                            self.levels.len()
                        ),
                    })
                }
            },
        };
        let policy = &self.levels[level];
        let timeout = match params.get("timeout") {
            Some(v) if policy.allow_timeout_override => {
                let us = v.as_u64().ok_or_else(|| ProtocolError::BadParameter {
                    name: "timeout".into(),
                    reason: "must be a non-negative integer of microseconds".into(),
                })?;
                (us > 0)
                    .then(|| Duration::from_micros(us))
                    .or(policy.default_timeout)
            }
            Some(ParamValue::String(_)) | Some(_) | None => policy.default_timeout,
        };
        Ok(Placement { level, timeout })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_pbtxt;

    #[test]
    fn reads_triton_dynamic_batching() {
        let c = parse_pbtxt(
            r#"max_batch_size: 16
            dynamic_batching {
              preferred_batch_size: [8, 4, 32]
              max_queue_delay_microseconds: 500
              preserve_ordering: true
              priority_levels: 2
              default_priority_level: 2
              default_queue_policy { max_queue_size: 3 default_timeout_microseconds: 1000 }
              priority_queue_policy { key: 1 value { timeout_action: DELAY allow_timeout_override: true } }
            }"#,
        )
        .expect("parses");
        let p = BatchPolicy::from_config(&c, 100);
        assert!(p.dynamic);
        assert_eq!(p.preferred, vec![4, 8]);
        assert_eq!(p.max_queue_delay, Duration::from_micros(500));
        assert!(p.preserve_ordering);
        assert_eq!(
            p.inline_max,
            Duration::ZERO,
            "a delay means waiting for company"
        );
        assert_eq!(p.levels.len(), 2);
        assert_eq!(p.default_level, 1);
        assert_eq!(p.levels[1].max_queue_size, 3);
        assert_eq!(p.levels[1].default_timeout, Some(Duration::from_millis(1)));
        assert_eq!(p.levels[0].on_timeout, OnTimeout::Delay);
        assert_eq!(
            p.levels[0].max_queue_size, 100,
            "unbounded becomes the server cap"
        );

        let mut params = Parameters::new();
        assert_eq!(
            p.placement(&params),
            Ok(Placement {
                level: 1,
                timeout: Some(Duration::from_millis(1))
            })
        );
        params.insert("priority".into(), ParamValue::Int(1));
        params.insert("timeout".into(), ParamValue::Int(250));
        assert_eq!(
            p.placement(&params),
            Ok(Placement {
                level: 0,
                timeout: Some(Duration::from_micros(250))
            })
        );
        params.insert("priority".into(), ParamValue::Int(3));
        assert!(p.placement(&params).is_err());
    }

    #[test]
    fn no_dynamic_batching_runs_requests_alone() {
        let p = BatchPolicy::from_config(&parse_pbtxt("max_batch_size: 8").expect("parses"), 10);
        assert!(!p.dynamic);
        assert_eq!(p.levels.len(), 1);
        assert_eq!(p.default_level, 0);
        assert_eq!(p.inline_max, INLINE_MAX);
    }

    #[test]
    fn only_batching_without_delay_or_ordering_may_run_inline() {
        let inline = |text: &str| {
            BatchPolicy::from_config(&parse_pbtxt(text).expect("parses"), 10).inline_max
        };
        assert_eq!(inline("max_batch_size: 8 dynamic_batching { }"), INLINE_MAX);
        assert_eq!(
            inline("max_batch_size: 8 dynamic_batching { max_queue_delay_microseconds: 100 }"),
            Duration::ZERO
        );
        assert_eq!(
            inline("max_batch_size: 8 dynamic_batching { preserve_ordering: true }"),
            Duration::ZERO
        );
    }
}
