//! Where a model's predictor runs: this server's own instances behind the batcher, or a remote
//! v2 server.

use super::RemoteClient;
use crate::error::ServerError;
use crate::metrics::ModelMetrics;
use crate::scheduler::{Executed, Scheduler};
use osprey_protocol::{Parameters, RequestedOutput, Tensor};
use std::time::Duration;

pub enum Predictor {
    /// This server's instances, behind the model's batcher.
    Local(Scheduler),
    /// A remote KServe v2 server.
    Remote {
        client: RemoteClient,
        metrics: ModelMetrics,
    },
}

impl Predictor {
    /// The model version's metric handles.
    pub fn metrics(&self) -> &ModelMetrics {
        match self {
            Predictor::Local(s) => s.metrics(),
            Predictor::Remote { metrics, .. } => metrics,
        }
    }

    /// Requests waiting in the local queue.
    pub fn pending(&self) -> usize {
        match self {
            Predictor::Local(s) => s.pending(),
            Predictor::Remote { .. } => 0,
        }
    }

    /// Runs validated predictor inputs of `rows` rows. `outputs` (empty: all) only narrows what
    /// a remote predictor sends back.
    pub async fn predict(
        &self,
        inputs: Vec<Tensor>,
        params: &Parameters,
        rows: usize,
        outputs: &[RequestedOutput],
    ) -> Result<Executed, ServerError> {
        match self {
            Predictor::Local(s) => s.submit(inputs, params, rows).await,
            Predictor::Remote { client, .. } => Ok(Executed {
                outputs: client.infer(inputs, outputs, params).await?,
                queue: Duration::ZERO,
            }),
        }
    }
}
