//! `osprey tune suggest`: the experiment's algorithm asked for its next assignments given the
//! trials so far (Katib's suggestion service as a command): for driving trials from another
//! tool, and for measuring the algorithms on a function evaluated in-process.

use super::local::{read_plan, seen_of, Trial, TuneError};
use super::suggest::{build, Seen};
use std::path::PathBuf;

/// `osprey tune suggest` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct TuneSuggestArgs {
    /// The Experiment manifest (kubeflow.org/v1beta1).
    pub experiment: PathBuf,
    /// The trials so far, as `osprey tune run --output` writes them (a JSON object with
    /// `trials`, or the list alone: `name`, `parameterAssignments[{name, value}]`, `state`
    /// Running|Succeeded|Failed|..., `metrics[{name, value}]`). Default: none.
    #[arg(long, value_name = "FILE")]
    pub trials: Option<PathBuf>,
    /// How many assignments to suggest.
    #[arg(long, default_value_t = 1)]
    pub count: usize,
}

/// The next assignments, one JSON list of `{name, value}` per line on stdout; none when the
/// search has ended.
pub fn suggest(args: &TuneSuggestArgs) -> Result<Vec<String>, TuneError> {
    let plan = read_plan(&args.experiment)?;
    let trials: Vec<Trial> = match &args.trials {
        None => Vec::new(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| TuneError::Io(format!("{}: {e}", path.display())))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| TuneError::Invalid(format!("{}: {e}", path.display())))?;
            let list = v.get("trials").cloned().unwrap_or(v);
            serde_json::from_value(list)
                .map_err(|e| TuneError::Invalid(format!("{}: trials: {e}", path.display())))?
        }
    };
    let seen: Vec<Seen> = trials.iter().map(|t| seen_of(t, &plan)).collect();
    let algorithm = build(&plan.algorithm, &plan.space)
        .map_err(|e| TuneError::Invalid(format!("spec.parameters: {e}")))?;
    Ok(algorithm
        .suggest(&seen, args.count, plan.maximize)
        .into_iter()
        .map(|a| {
            serde_json::Value::Array(
                a.into_iter()
                    .map(|(name, value)| serde_json::json!({"name": name, "value": value}))
                    .collect(),
            )
            .to_string()
        })
        .collect())
}
