//! Reconciliation: an InferenceService's desired objects applied by server-side apply (owner
//! references set, a finalizer deleting them on removal), leftovers removed, status written from
//! the Deployments' real status. Idempotent: applying the same spec twice changes nothing.

mod pods;
pub mod status;

use crate::crd::InferenceService;
use crate::desired::labels::{Component, ISVC_LABEL, MANAGER};
use crate::desired::{self, revision_of_deployment, ComponentObjects, Observed, Settings};
use crate::error::Error;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
use kube::runtime::finalizer::{finalizer, Event as Finalize};
use kube::{Api, Client, Resource, ResourceExt};
use std::sync::Arc;
use std::time::Duration;

/// Finalizer the controller puts on every InferenceService.
pub const FINALIZER: &str = "serving.osprey.dev/cleanup";

/// What every reconciliation shares.
pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub recorder: Recorder,
}

impl Context {
    pub fn new(client: Client, settings: Settings) -> Context {
        let recorder = crate::events::recorder(&client);
        Context {
            client,
            settings,
            recorder,
        }
    }

    fn hpa_api(&self, ns: &str) -> Api<DynamicObject> {
        let (group, version) = self
            .settings
            .hpa_api_version
            .split_once('/')
            .unwrap_or(("autoscaling", "v2"));
        let gvk = GroupVersionKind::gvk(group, version, "HorizontalPodAutoscaler");
        Api::namespaced_with(self.client.clone(), ns, &ApiResource::from_gvk(&gvk))
    }
}

/// Picks `autoscaling/v2` when the server has it, else `autoscaling/v2beta2` (before 1.23).
pub async fn hpa_api_version(client: &Client) -> Result<String, Error> {
    let group = kube::discovery::group(client, "autoscaling").await?;
    Ok(if group.versions().any(|v| v == "v2") {
        "autoscaling/v2".into()
    } else {
        "autoscaling/v2beta2".into()
    })
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

async fn delete_if_present<K>(api: &Api<K>, name: &str) -> Result<(), Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn apply_params() -> PatchParams {
    PatchParams::apply(MANAGER).force()
}

async fn apply_component(
    ns: &str,
    objs: &ComponentObjects,
    isvc_name: &str,
    ctx: &Context,
) -> Result<(), Error> {
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), ns);
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), ns);
    let c = objs.component;
    let mut stable = objs.stable.clone();
    stable.status = None;
    deployments
        .patch(
            &c.object_name(isvc_name),
            &apply_params(),
            &Patch::Apply(&typed(stable)?),
        )
        .await?;
    match &objs.canary {
        Some(canary) => {
            deployments
                .patch(
                    &c.canary_name(isvc_name),
                    &apply_params(),
                    &Patch::Apply(&typed(canary.clone())?),
                )
                .await?;
        }
        None => delete_if_present(&deployments, &c.canary_name(isvc_name)).await?,
    }
    services
        .patch(
            &c.object_name(isvc_name),
            &apply_params(),
            &Patch::Apply(&typed(objs.service.clone())?),
        )
        .await?;
    let hpas = ctx.hpa_api(ns);
    match &objs.hpa {
        Some(h) => {
            hpas.patch(&c.object_name(isvc_name), &apply_params(), &Patch::Apply(h))
                .await?;
        }
        None => delete_if_present(&hpas, &c.object_name(isvc_name)).await?,
    }
    Ok(())
}

/// A typed object as JSON with its apiVersion and kind, as server-side apply wants.
fn typed<K: k8s_openapi::Resource + serde::Serialize>(obj: K) -> Result<serde_json::Value, Error> {
    let mut v = serde_json::to_value(obj)?;
    v["apiVersion"] = K::API_VERSION.into();
    v["kind"] = K::KIND.into();
    Ok(v)
}

async fn observed(
    deployments: &Api<Deployment>,
    isvc: &str,
    c: Component,
) -> Result<Observed, Error> {
    let stable = deployments.get_opt(&c.object_name(isvc)).await?;
    Ok(Observed {
        stable: stable.and_then(|d| {
            let rev = revision_of_deployment(&d)?;
            Some((rev, d.spec?.template))
        }),
    })
}

async fn write_status(
    api: &Api<InferenceService>,
    name: &str,
    status: crate::crd::InferenceServiceStatus,
) -> Result<(), Error> {
    let patch = serde_json::json!({ "status": status });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

async fn apply(isvc: Arc<InferenceService>, ctx: &Context) -> Result<Action, Error> {
    let ns = isvc.namespace().unwrap_or_else(|| "default".into());
    let name = isvc.name_any();
    let api: Api<InferenceService> = Api::namespaced(ctx.client.clone(), &ns);
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    let previous = isvc
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let owner = isvc
        .controller_owner_ref(&())
        .ok_or_else(|| Error::Other("the InferenceService has no uid yet".into()))?;
    let mut observed_by = std::collections::BTreeMap::new();
    for c in [
        Component::Predictor,
        Component::Transformer,
        Component::Explainer,
    ] {
        observed_by.insert(c, observed(&deployments, &name, c).await?);
    }
    let lookup = |c: Component| observed_by.get(&c).cloned().unwrap_or_default();
    let objects = match desired::build(&isvc, &owner, &lookup, &ctx.settings) {
        Ok(o) => o,
        Err(e) => {
            // A spec error is reported, not retried: the next change of the spec retries.
            let message = e.to_string();
            tracing::warn!(isvc = %name, namespace = %ns, error = %message, "invalid InferenceService");
            crate::events::publish(
                &ctx.recorder,
                &isvc.object_ref(&()),
                true,
                "InvalidSpec",
                &message,
            )
            .await;
            write_status(
                &api,
                &name,
                status::invalid(isvc.metadata.generation, &message, &previous, &now()),
            )
            .await?;
            return Ok(Action::await_change());
        }
    };
    for objs in &objects {
        apply_component(&ns, objs, &name, ctx).await?;
    }
    // Components removed from the spec go away.
    for c in [Component::Transformer, Component::Explainer] {
        if !objects.iter().any(|o| o.component == c) {
            delete_if_present(&deployments, &c.object_name(&name)).await?;
            delete_if_present(&deployments, &c.canary_name(&name)).await?;
            let services: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
            delete_if_present(&services, &c.object_name(&name)).await?;
            delete_if_present(&ctx.hpa_api(&ns), &c.object_name(&name)).await?;
        }
    }
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let mut found = Vec::new();
    for objs in &objects {
        let c = objs.component;
        let stable = deployments.get_opt(&c.object_name(&name)).await?;
        let canary = match objs.canary {
            Some(_) => deployments.get_opt(&c.canary_name(&name)).await?,
            None => None,
        };
        let selector = desired::labels::selector(&name, c)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let pods = pods_api
            .list(&ListParams::default().labels(&selector))
            .await?;
        found.push((stable, canary, pods::problem(&pods.items)));
    }
    let observations: Vec<status::Observation<'_>> = objects
        .iter()
        .zip(&found)
        .map(|(o, (s, c, p))| status::Observation {
            objects: o,
            stable: s.as_ref(),
            canary: c.as_ref(),
            pod_problem: p.clone(),
        })
        .collect();
    let st = status::compute(
        &name,
        &ns,
        isvc.metadata.generation,
        &observations,
        &previous,
        &now(),
    );
    let ready = st
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if isvc.status.as_ref() != Some(&st) {
        write_status(&api, &name, st).await?;
    }
    // Pods are not watched: while not ready, look again soon for what they report.
    Ok(Action::requeue(Duration::from_secs(if ready {
        300
    } else {
        5
    })))
}

/// Deletes everything the InferenceService owns (there may be no garbage collector running).
async fn cleanup(isvc: Arc<InferenceService>, ctx: &Context) -> Result<Action, Error> {
    let ns = isvc.namespace().unwrap_or_else(|| "default".into());
    let selector = format!("{ISVC_LABEL}={}", isvc.name_any());
    let lp = ListParams::default().labels(&selector);
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    for d in deployments.list(&lp).await? {
        delete_if_present(&deployments, &d.name_any()).await?;
    }
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
    for s in services.list(&lp).await? {
        delete_if_present(&services, &s.name_any()).await?;
    }
    let hpas = ctx.hpa_api(&ns);
    for h in hpas.list(&lp).await? {
        delete_if_present(&hpas, &h.name_any()).await?;
    }
    Ok(Action::await_change())
}

/// Reconciles one InferenceService.
pub async fn reconcile(isvc: Arc<InferenceService>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = isvc.namespace().unwrap_or_else(|| "default".into());
    let api: Api<InferenceService> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, FINALIZER, isvc, |event| async {
        match event {
            Finalize::Apply(i) => apply(i, &ctx).await,
            Finalize::Cleanup(i) => cleanup(i, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Other(format!("reconcile: {e}")))
}

/// Requeue after a failure, with the reason logged.
pub fn on_error(isvc: Arc<InferenceService>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(isvc = %isvc.name_any(), error = %err, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
}
