//! Why a component's pods are not ready, read from the pods themselves: the first container
//! (init containers first) that is waiting for a reason other than starting, or that ended with
//! a non-zero exit code, named with its pod, reason, exit code and message. This is what a user
//! needs in the InferenceService's status when a model cannot be pulled or the server cannot
//! start, instead of "0 of 1 replicas ready".

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// Waiting reasons that only mean "starting".
const STARTING: &[&str] = &["ContainerCreating", "PodInitializing"];

/// Longest message kept from a container (the status is not a log).
const MAX_MESSAGE: usize = 300;

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn clip(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(MAX_MESSAGE) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// The problem of one container, if it has one.
fn container_problem(kind: &str, c: &ContainerStatus) -> Option<String> {
    let describe = |reason: &str, exit: Option<i32>, message: Option<&str>| {
        let mut s = format!("{kind} {}: {reason}", c.name);
        if let Some(code) = exit {
            s.push_str(&format!(" (exit code {code})"));
        }
        if let Some(m) = message.filter(|m| !m.trim().is_empty()) {
            s.push_str(&format!(": {}", clip(m)));
        }
        s
    };
    let state = c.state.as_ref()?;
    if let Some(w) = &state.waiting {
        let reason = w.reason.as_deref().unwrap_or("Waiting");
        if STARTING.contains(&reason) {
            return None;
        }
        // A crash loop's own message is only the back-off; the last run says why.
        let last = c.last_state.as_ref().and_then(|l| l.terminated.as_ref());
        let message = w
            .message
            .as_deref()
            .filter(|_| last.is_none())
            .or_else(|| last.and_then(|t| t.message.as_deref().or(t.reason.as_deref())));
        return Some(describe(reason, last.map(|t| t.exit_code), message));
    }
    if let Some(t) = &state.terminated {
        if t.exit_code != 0 {
            let reason = t.reason.as_deref().unwrap_or("Error");
            return Some(describe(reason, Some(t.exit_code), t.message.as_deref()));
        }
    }
    None
}

/// The first problem among `pods` that are not ready, as `pod NAME: ...`.
pub fn problem(pods: &[Pod]) -> Option<String> {
    pods.iter().filter(|p| !ready(p)).find_map(|pod| {
        let status = pod.status.as_ref()?;
        let name = pod.metadata.name.as_deref().unwrap_or("?");
        let init = status.init_container_statuses.iter().flatten();
        let main = status.container_statuses.iter().flatten();
        init.filter_map(|c| container_problem("init container", c))
            .chain(main.filter_map(|c| container_problem("container", c)))
            .next()
            .map(|p| format!("pod {name}: {p}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "iris-predictor-1"}, "status": status}))
            .expect("pod")
    }

    #[test]
    fn a_failed_pull_names_the_init_container_and_its_message() {
        let p = pod(json!({
            "conditions": [{"type": "Ready", "status": "False"}],
            "initContainerStatuses": [{
                "name": "storage-initializer", "ready": false, "restartCount": 2, "image": "x", "imageID": "",
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": "HTTP 404 for http://store/nope"}}
            }],
            "containerStatuses": [{"name": "osprey", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
                "state": {"waiting": {"reason": "PodInitializing"}}}]
        }));
        assert_eq!(
            problem(&[p]).as_deref(),
            Some("pod iris-predictor-1: init container storage-initializer: CrashLoopBackOff (exit code 1): HTTP 404 for http://store/nope")
        );
    }

    #[test]
    fn starting_and_ready_pods_have_no_problem() {
        let starting = pod(json!({
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "osprey", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
                "state": {"waiting": {"reason": "ContainerCreating"}}}]
        }));
        let ready = pod(json!({
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "osprey", "ready": true, "restartCount": 3, "image": "x", "imageID": "",
                "state": {"running": {}},
                "lastState": {"terminated": {"exitCode": 137}}}]
        }));
        assert_eq!(problem(&[starting, ready]), None);
    }

    #[test]
    fn a_server_that_exits_is_reported_with_its_code_and_a_clipped_message() {
        let long = "x".repeat(1000);
        let p = pod(json!({
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "osprey", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
                "state": {"terminated": {"exitCode": 2, "message": long}}}]
        }));
        let text = problem(&[p]).expect("a problem");
        assert!(
            text.starts_with("pod iris-predictor-1: container osprey: Error (exit code 2): xxx"),
            "{text}"
        );
        assert!(text.chars().count() < 400, "{}", text.len());
    }
}
