//! Version directories and Triton's version policies (latest / all / specific).

use super::ModelConfig;
use osprey_protocol::grpc::inference::model_version_policy::PolicyChoice;
use std::path::Path;

/// Numeric version directories of a model that contain its model file, ascending.
pub fn versions_on_disk(model_dir: &Path, file_name: &str) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(model_dir) else {
        return Vec::new();
    };
    let mut versions: Vec<u64> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join(file_name).is_file())
        .filter_map(|e| e.file_name().to_str()?.parse::<u64>().ok())
        .collect();
    versions.sort_unstable();
    versions
}

/// Applies the config's version policy (default: the latest one version).
pub fn select_versions(config: &ModelConfig, available: &[u64]) -> Vec<u64> {
    match config
        .version_policy
        .as_ref()
        .and_then(|p| p.policy_choice.as_ref())
    {
        Some(PolicyChoice::All(_)) => available.to_vec(),
        Some(PolicyChoice::Specific(s)) => available
            .iter()
            .copied()
            .filter(|v| {
                s.versions
                    .iter()
                    .any(|w| u64::try_from(*w).ok() == Some(*v))
            })
            .collect(),
        Some(PolicyChoice::Latest(l)) => latest(available, l.num_versions.max(1) as usize),
        None => latest(available, 1),
    }
}

fn latest(available: &[u64], n: usize) -> Vec<u64> {
    available[available.len().saturating_sub(n)..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_pbtxt;

    #[test]
    fn policies() {
        let avail = [1, 2, 5];
        let c = |t: &str| parse_pbtxt(t).expect("parses");
        assert_eq!(select_versions(&c(""), &avail), vec![5]);
        assert_eq!(
            select_versions(&c("version_policy { latest { num_versions: 2 } }"), &avail),
            vec![2, 5]
        );
        assert_eq!(
            select_versions(&c("version_policy { all { } }"), &avail),
            vec![1, 2, 5]
        );
        assert_eq!(
            select_versions(
                &c("version_policy { specific { versions: [1, 3] } }"),
                &avail
            ),
            vec![1]
        );
    }

    #[test]
    fn finds_numeric_dirs_with_the_model_file() {
        let dir = tempfile::tempdir().expect("tmp");
        for v in ["1", "2", "x"] {
            std::fs::create_dir(dir.path().join(v)).expect("mkdir");
        }
        std::fs::write(dir.path().join("1/model.onnx"), b"").expect("write");
        std::fs::write(dir.path().join("x/model.onnx"), b"").expect("write");
        assert_eq!(versions_on_disk(dir.path(), "model.onnx"), vec![1]);
    }
}
