//! Labels and names of what the controller creates.

use std::collections::BTreeMap;

pub const ISVC_LABEL: &str = "serving.osprey.dev/inferenceservice";
pub const COMPONENT_LABEL: &str = "serving.osprey.dev/component";
pub const REVISION_LABEL: &str = "serving.osprey.dev/revision";
pub const TRACK_LABEL: &str = "serving.osprey.dev/track";
/// Field manager of the controller's server-side applies.
pub const MANAGER: &str = "osprey-controller";

/// The components of an InferenceService.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Component {
    Predictor,
    Transformer,
    Explainer,
}

impl Component {
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Predictor => "predictor",
            Component::Transformer => "transformer",
            Component::Explainer => "explainer",
        }
    }

    /// Name of the component's Service and stable Deployment.
    pub fn object_name(self, isvc: &str) -> String {
        format!("{isvc}-{}", self.as_str())
    }

    /// Name of the component's canary Deployment.
    pub fn canary_name(self, isvc: &str) -> String {
        format!("{isvc}-{}-canary", self.as_str())
    }

    /// The condition reporting this component.
    pub fn condition(self) -> &'static str {
        match self {
            Component::Predictor => "PredictorReady",
            Component::Transformer => "TransformerReady",
            Component::Explainer => "ExplainerReady",
        }
    }
}

/// Labels selecting every pod of a component (both tracks).
pub fn selector(isvc: &str, c: Component) -> BTreeMap<String, String> {
    BTreeMap::from([
        (ISVC_LABEL.to_string(), isvc.to_string()),
        (COMPONENT_LABEL.to_string(), c.as_str().to_string()),
    ])
}

/// A short stable hash of a JSON value (FNV-1a 64, hex): a revision's name.
pub fn revision_of(value: &serde_json::Value) -> String {
    let text = value.to_string();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:010x}", h & 0xff_ffff_ffff)
}
