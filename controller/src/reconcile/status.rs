//! The InferenceService's status from its Deployments' real status: per component replicas and
//! readiness, the conditions Ready / PredictorReady / TransformerReady / ExplainerReady, urls.

use crate::crd::{Addressable, ComponentStatus, Condition, InferenceServiceStatus, TrafficTarget};
use crate::desired::labels::Component;
use crate::desired::pod::{GRPC_PORT, HTTP_PORT};
use crate::desired::{revision_of_deployment, ComponentObjects};
use k8s_openapi::api::apps::v1::Deployment;

/// What the cluster reports of one component.
pub struct Observation<'a> {
    pub objects: &'a ComponentObjects,
    pub stable: Option<&'a Deployment>,
    pub canary: Option<&'a Deployment>,
    /// Why its pods are not ready, as they report it ([`super::pods::problem`]).
    pub pod_problem: Option<String>,
}

fn counts(d: Option<&Deployment>) -> (i32, i32) {
    let Some(d) = d else { return (0, 0) };
    let wanted = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let ready = d
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    (wanted, ready)
}

fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    previous: &[Condition],
    now: &str,
) -> Condition {
    let status = if ok { "True" } else { "False" }.to_string();
    // The transition time only moves when the status changes.
    let since = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.to_string());
    Condition {
        type_: type_.to_string(),
        status,
        reason: Some(reason.to_string()),
        message: Some(message),
        last_transition_time: Some(since),
    }
}

/// The status for `observed` components of InferenceService `name` in `namespace`.
pub fn compute(
    name: &str,
    namespace: &str,
    generation: Option<i64>,
    observed: &[Observation<'_>],
    previous: &[Condition],
    now: &str,
) -> InferenceServiceStatus {
    let mut status = InferenceServiceStatus {
        observed_generation: generation,
        ..Default::default()
    };
    let mut all_ready = true;
    let host = |c: Component| format!("{}.{namespace}.svc.cluster.local", c.object_name(name));
    for o in observed {
        let c = o.objects.component;
        let (sw, sr) = counts(o.stable);
        let (cw, cr) = counts(o.canary);
        let stable_rev = o.stable.and_then(revision_of_deployment);
        // Ready: every wanted replica of every track is ready, and the tracks run what the spec asks.
        let ready =
            o.stable.is_some() && sr >= sw.max(1) && (o.canary.is_none() || cr >= cw.max(1));
        all_ready &= ready;
        let mut traffic = Vec::new();
        if let (Some(canary), Some(old)) = (o.canary, stable_rev.clone()) {
            traffic.push(TrafficTarget {
                revision_name: old,
                percent: 100 - o.objects.canary_percent,
                latest_revision: false,
            });
            traffic.push(TrafficTarget {
                revision_name: revision_of_deployment(canary).unwrap_or_default(),
                percent: o.objects.canary_percent,
                latest_revision: true,
            });
        } else if let Some(rev) = stable_rev.clone() {
            traffic.push(TrafficTarget {
                revision_name: rev,
                percent: 100,
                latest_revision: true,
            });
        }
        status.conditions.push(condition(
            c.condition(),
            ready,
            if ready {
                "MinimumReplicasAvailable"
            } else {
                "ReplicasNotReady"
            },
            match (&o.pod_problem, ready) {
                (Some(p), false) => format!("{} of {} replicas ready; {p}", sr + cr, sw + cw),
                _ => format!("{} of {} replicas ready", sr + cr, sw + cw),
            },
            previous,
            now,
        ));
        status.components.insert(
            c.as_str().to_string(),
            ComponentStatus {
                url: Some(format!("http://{}", host(c))),
                rest_url: Some(format!("http://{}:{HTTP_PORT}", host(c))),
                grpc_url: Some(format!("grpc://{}:{GRPC_PORT}", host(c))),
                replicas: sw + cw,
                ready_replicas: sr + cr,
                latest_ready_revision: ready.then(|| o.objects.revision.clone()),
                latest_created_revision: Some(o.objects.revision.clone()),
                traffic,
            },
        );
    }
    let entry = if observed
        .iter()
        .any(|o| o.objects.component == Component::Transformer)
    {
        Component::Transformer
    } else {
        Component::Predictor
    };
    let url = format!("http://{}", host(entry));
    status.url = Some(url.clone());
    status.address = Some(Addressable { url });
    status.conditions.insert(
        0,
        condition(
            "Ready",
            all_ready,
            if all_ready {
                "AllComponentsReady"
            } else {
                "ComponentsNotReady"
            },
            if all_ready {
                "every component has its replicas ready".into()
            } else {
                "waiting for component replicas".into()
            },
            previous,
            now,
        ),
    );
    status
}

/// The status of a spec the controller cannot act on.
pub fn invalid(
    generation: Option<i64>,
    message: &str,
    previous: &[Condition],
    now: &str,
) -> InferenceServiceStatus {
    InferenceServiceStatus {
        observed_generation: generation,
        conditions: vec![condition(
            "Ready",
            false,
            "InvalidSpec",
            message.to_string(),
            previous,
            now,
        )],
        ..Default::default()
    }
}
