//! Leader election on a `coordination.k8s.io/v1` Lease, so that two controller replicas never
//! reconcile at once: one holds the lease and renews it; the others wait for it to expire.

use crate::error::Error;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::PostParams;
use kube::{Api, Client};
use std::time::Duration;

/// Which lease, and who is asking.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    /// This replica (its pod name).
    pub identity: String,
    /// How long a lease stays valid without renewal.
    pub duration: Duration,
    /// How often the holder renews.
    pub renew_every: Duration,
}

/// What the lease says, and what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nobody holds it, it expired, or we hold it: take or renew it.
    Take { transition: bool },
    /// Another replica holds a live lease.
    Wait { holder: String },
}

/// Decides from a lease's spec at time `now` (pure).
pub fn decide(spec: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> Decision {
    let Some(s) = spec else {
        return Decision::Take { transition: true };
    };
    let holder = s.holder_identity.clone().unwrap_or_default();
    if holder.is_empty() {
        return Decision::Take { transition: true };
    }
    if holder == identity {
        return Decision::Take { transition: false };
    }
    let seconds = i64::from(s.lease_duration_seconds.unwrap_or(15));
    let renewed = s.renew_time.as_ref().map(|t| t.0);
    match renewed {
        Some(t) if t + SignedDuration::from_secs(seconds) > now => Decision::Wait { holder },
        _ => Decision::Take { transition: true },
    }
}

/// Tries once to take or renew the lease; true when we hold it afterwards.
pub async fn try_acquire(api: &Api<Lease>, s: &LeaseSettings) -> Result<bool, Error> {
    let now = Timestamp::now();
    let current = api.get_opt(&s.name).await?;
    let decision = decide(
        current.as_ref().and_then(|l| l.spec.as_ref()),
        &s.identity,
        now,
    );
    let Decision::Take { transition } = decision else {
        return Ok(false);
    };
    let old = current
        .as_ref()
        .and_then(|l| l.spec.clone())
        .unwrap_or_default();
    let spec = LeaseSpec {
        holder_identity: Some(s.identity.clone()),
        lease_duration_seconds: Some(s.duration.as_secs().max(1) as i32),
        acquire_time: if transition {
            Some(MicroTime(now))
        } else {
            old.acquire_time.clone()
        },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(old.lease_transitions.unwrap_or(0) + i32::from(transition)),
        ..Default::default()
    };
    let result = match current {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(s.name.clone()),
                    namespace: Some(s.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(spec),
            };
            api.create(&PostParams::default(), &lease).await.map(|_| ())
        }
        Some(mut lease) => {
            // The resourceVersion makes this a compare-and-swap: a racing replica gets 409.
            lease.spec = Some(spec);
            api.replace(&s.name, &PostParams::default(), &lease)
                .await
                .map(|_| ())
        }
    };
    match result {
        Ok(()) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Waits until this replica holds the lease.
pub async fn acquire(client: &Client, s: &LeaseSettings) -> Result<(), Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), &s.namespace);
    loop {
        if try_acquire(&api, s).await? {
            tracing::info!(lease = %s.name, identity = %s.identity, "leader");
            return Ok(());
        }
        tokio::time::sleep(s.renew_every).await;
    }
}

/// Renews the lease until it is lost (or cannot be renewed within its duration); returns then.
pub async fn hold(client: Client, s: LeaseSettings) {
    let api: Api<Lease> = Api::namespaced(client, &s.namespace);
    let mut last = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(s.renew_every).await;
        match try_acquire(&api, &s).await {
            Ok(true) => last = tokio::time::Instant::now(),
            Ok(false) => {
                tracing::warn!(lease = %s.name, "leadership lost to another replica");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not renew the lease");
                if last.elapsed() > s.duration {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, renewed: Timestamp) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(renewed)),
            ..Default::default()
        }
    }

    #[test]
    fn decisions() {
        let now = Timestamp::now();
        assert_eq!(decide(None, "a", now), Decision::Take { transition: true });
        assert_eq!(
            decide(Some(&spec("a", now)), "a", now),
            Decision::Take { transition: false }
        );
        assert_eq!(
            decide(Some(&spec("b", now)), "a", now),
            Decision::Wait { holder: "b".into() }
        );
        let stale = now - SignedDuration::from_secs(16);
        assert_eq!(
            decide(Some(&spec("b", stale)), "a", now),
            Decision::Take { transition: true }
        );
    }
}
