//! The Experiment and Trial controllers: Experiments watched with the Trials they own, Trials
//! with the pods of their runs (labelled with the trial); both run when their CRDs are served.

use super::experiment::{self, Context as ExperimentContext};
use super::trial::{self, Context as TrialContext};
use crate::error::Error;
use crate::training::run::served;
use crate::tuning::experiment::{Experiment, Plan};
use crate::tuning::space::format_double;
use crate::tuning::trial::{EarlyStoppingRule, Trial, TRIAL_LABEL};
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{watcher, Controller};
use kube::{Api, Client};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The medianstop rules for new trials of `exp` (from the succeeded trials' first-reports
/// averages), and how many first reports each trial must average.
pub fn early_stopping_rules(
    _exp: &Experiment,
    plan: &Plan,
    averages: &[f64],
) -> (Vec<EarlyStoppingRule>, Option<usize>) {
    let Some(ms) = &plan.early_stopping else {
        return (Vec::new(), None);
    };
    let rules = ms
        .rule_from_averages(&plan.metric, averages, plan.maximize)
        .map(|r| EarlyStoppingRule {
            name: r.metric,
            value: format_double(r.value),
            comparison: r.comparison.as_str().to_string(),
            start_step: i64::try_from(r.start_step).unwrap_or(i64::MAX),
        })
        .into_iter()
        .collect();
    (rules, Some(ms.start_step))
}

/// The Trial an object labelled with `katib.kubeflow.org/trial` belongs to.
fn trial_of(meta: &ObjectMeta) -> Option<ObjectRef<Trial>> {
    let ns = meta.namespace.clone()?;
    let name = meta.labels.as_ref()?.get(TRIAL_LABEL)?.clone();
    Some(ObjectRef::<Trial>::new(&name).within(&ns))
}

fn on_error<K>(_: Arc<K>, e: &Error, _: Arc<impl Send + Sync>) -> Action {
    tracing::warn!(error = %e, "tuning reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

fn count(kind: &'static str) -> impl Fn(bool) {
    move |ok| {
        let result = if ok { "ok" } else { "error" };
        metrics::counter!("osprey_controller_reconcile_total", "result" => result, "kind" => kind)
            .increment(1);
    }
}

/// Runs both controllers until `shutdown`; returns at once when the CRDs are not installed.
pub async fn run(
    client: Client,
    namespace: Option<String>,
    image: String,
    shutdown: impl Future<Output = ()> + Send + Sync + Clone + 'static,
) {
    if !(served::<Experiment>(&client).await && served::<Trial>(&client).await) {
        tracing::info!("the Experiment/Trial CRDs are not installed: tuning not watched (osprey crd installs them)");
        return;
    }
    tracing::info!("running Katib Experiments and Trials");
    let api = |c: &Client| -> (Api<Experiment>, Api<Trial>, Api<Pod>, Api<Job>) {
        match namespace.as_deref() {
            Some(ns) => (
                Api::namespaced(c.clone(), ns),
                Api::namespaced(c.clone(), ns),
                Api::namespaced(c.clone(), ns),
                Api::namespaced(c.clone(), ns),
            ),
            None => (
                Api::all(c.clone()),
                Api::all(c.clone()),
                Api::all(c.clone()),
                Api::all(c.clone()),
            ),
        }
    };
    let (experiments, trials, pods, jobs) = api(&client);
    let ectx = Arc::new(ExperimentContext {
        client: client.clone(),
        recorder: crate::events::recorder(&client),
    });
    let tctx = Arc::new(TrialContext {
        client: client.clone(),
        recorder: crate::events::recorder(&client),
        image,
    });
    let ecount = count("Experiment");
    let e = Controller::new(experiments, watcher::Config::default())
        .owns(trials.clone(), watcher::Config::default())
        .graceful_shutdown_on(shutdown.clone())
        .run(experiment::reconcile, on_error, ectx)
        .for_each(move |r| {
            ecount(r.is_ok());
            async {}
        });
    let tcount = count("Trial");
    // A trial's run may be of any kind: its pods and, for the default kind, its Job (both
    // labelled with the trial) are watched; other kinds are polled while they run.
    let t = Controller::new(trials, watcher::Config::default())
        .watches(
            pods,
            watcher::Config::default().labels(TRIAL_LABEL),
            |pod: Pod| trial_of(&pod.metadata),
        )
        .watches(
            jobs,
            watcher::Config::default().labels(TRIAL_LABEL),
            |job: Job| trial_of(&job.metadata),
        )
        .graceful_shutdown_on(shutdown)
        .run(trial::reconcile, on_error, tctx)
        .for_each(move |r| {
            tcount(r.is_ok());
            async {}
        });
    futures::join!(e, t);
}
