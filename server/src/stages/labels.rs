//! Label files (one label per line, as Triton's `label_filename`) and the label-mapping step:
//! integer class indices in an output become their labels.

use crate::error::ServerError;
use bytes::Bytes;
use osprey_protocol::{Tensor, TensorData};
use std::path::Path;

/// Reads a label file: one label per line, trailing empty lines dropped.
pub fn read_labels(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read label file {}: {e}", path.display()))?;
    let mut labels: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
    while labels.last().is_some_and(String::is_empty) {
        labels.pop();
    }
    Ok(labels)
}

/// Maps the class indices of one output to labels.
#[derive(Debug, Clone)]
pub struct LabelMap {
    pub output: String,
    pub labels: Vec<String>,
}

impl LabelMap {
    fn label(&self, index: i64) -> Bytes {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.labels.get(i))
            .map_or_else(
                || Bytes::from(index.to_string()),
                |l| Bytes::from(l.clone()),
            )
    }

    /// Replaces the output's integer indices by BYTES labels; indices without a label keep
    /// their number as text.
    pub fn apply(&self, outputs: &mut [Tensor]) -> Result<(), ServerError> {
        let Some(t) = outputs.iter_mut().find(|t| t.name == self.output) else {
            return Ok(());
        };
        let labels: Vec<Bytes> = match &t.data {
            TensorData::Int64(v) => v.iter().map(|&i| self.label(i)).collect(),
            TensorData::Int32(v) => v.iter().map(|&i| self.label(i.into())).collect(),
            TensorData::Uint8(v) => v.iter().map(|&i| self.label(i.into())).collect(),
            TensorData::Uint32(v) => v.iter().map(|&i| self.label(i.into())).collect(),
            other => {
                return Err(ServerError::Internal(format!(
                    "labels step: output '{}' holds {}, not class indices",
                    self.output,
                    other.datatype().as_str()
                )))
            }
        };
        t.data = TensorData::Bytes(labels);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_indices_and_keeps_unknown_ones() {
        let map = LabelMap {
            output: "label".into(),
            labels: vec!["setosa".into(), "versicolor".into()],
        };
        let mut outs =
            vec![Tensor::new("label", vec![3], TensorData::Int64(vec![1, 0, 7])).expect("t")];
        map.apply(&mut outs).expect("maps");
        assert_eq!(
            outs[0].data,
            TensorData::Bytes(vec!["versicolor".into(), "setosa".into(), "7".into()])
        );
    }

    #[test]
    fn refuses_float_outputs() {
        let map = LabelMap {
            output: "p".into(),
            labels: vec![],
        };
        let mut outs = vec![Tensor::new("p", vec![1], TensorData::Fp32(vec![0.5])).expect("t")];
        assert!(map.apply(&mut outs).is_err());
    }
}
