//! Where a model's predictor runs: this server's own instances behind the batcher, or a remote
//! v2 server.

use super::RemoteClient;
use crate::error::ServerError;
use crate::infer::Call;
use crate::metrics::ModelMetrics;
use crate::scheduler::{Executed, Placement, Scheduler};
use osprey_protocol::{Parameters, Tensor};
use std::time::Instant;

pub enum Predictor {
    /// This server's instances, behind the model's batcher.
    Local(Scheduler),
    /// A remote KServe v2 server.
    Remote {
        client: RemoteClient,
        metrics: Box<ModelMetrics>,
    },
    /// Triton's ensemble: other models of this server, step by step.
    Ensemble {
        ensemble: Box<crate::ensemble::Ensemble>,
        metrics: Box<ModelMetrics>,
    },
}

impl Predictor {
    /// The model version's metric handles.
    pub fn metrics(&self) -> &ModelMetrics {
        match self {
            Predictor::Local(s) => s.metrics(),
            Predictor::Remote { metrics, .. } | Predictor::Ensemble { metrics, .. } => metrics,
        }
    }

    /// Requests waiting in the local queue.
    pub fn pending(&self) -> usize {
        match self {
            Predictor::Local(s) => s.pending(),
            Predictor::Remote { .. } | Predictor::Ensemble { .. } => 0,
        }
    }

    /// Where a request with these parameters queues (`priority`, `timeout`); a remote
    /// predictor queues nothing here and gets the parameters themselves.
    pub fn placement(&self, params: &Parameters) -> Result<Placement, ServerError> {
        match self {
            Predictor::Local(s) => Ok(s.placement(params)?),
            Predictor::Remote { .. } | Predictor::Ensemble { .. } => Ok(Placement::default()),
        }
    }

    /// Runs validated predictor inputs of `rows` rows. `call.wanted` (empty: all) only narrows
    /// what a remote predictor sends back.
    pub async fn predict(
        &self,
        inputs: Vec<Tensor>,
        rows: usize,
        call: Call<'_>,
    ) -> Result<Executed, ServerError> {
        match self {
            Predictor::Local(s) => s.submit(inputs, rows, call.placement).await,
            Predictor::Remote { client, .. } => {
                let started = Instant::now();
                let outputs = client.infer(inputs, call.wanted, call.params).await?;
                Ok(Executed::unqueued(outputs, started))
            }
            Predictor::Ensemble { ensemble, .. } => {
                let started = Instant::now();
                let outputs = ensemble.run(inputs, call.protocol).await?;
                Ok(Executed::unqueued(outputs, started))
            }
        }
    }
}
