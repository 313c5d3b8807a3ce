//! Kubernetes Events of every controller here: one recorder per controller (reported as the
//! manager, with this pod's name), and one way of publishing a Normal or Warning event about an
//! object (best effort: an event that cannot be written never fails a reconcile).

use crate::desired::labels::MANAGER;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::Client;

/// The recorder of a controller.
pub fn recorder(client: &Client) -> Recorder {
    Recorder::new(
        client.clone(),
        Reporter {
            controller: MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        },
    )
}

/// Publishes a `Reconcile` event about `object`.
pub async fn publish(
    recorder: &Recorder,
    object: &ObjectReference,
    warning: bool,
    reason: &str,
    note: &str,
) {
    let event = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.into(),
        note: Some(note.into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    let _ = recorder.publish(&event, object).await;
}
