//! The Osprey server: model repository, model lifecycle, instances, and the REST, gRPC and
//! metrics front ends.
//!
//! Start reading at [`server`] (start-up and shutdown), then [`http`] and [`grpc`] (front
//! ends), [`infer`] (the path every inference takes), and [`model`] (registry, loading,
//! instances, statistics). [`cache`] is Triton's response cache; [`ensemble`] runs Triton's
//! ensembles. [`config`] reads Triton's
//! `config.pbtxt`. [`access`] (restricted APIs, bearer tokens) and [`tls`] guard the front
//! ends; `http::serve` and `grpc::incoming` bound their connections. [`trace`] samples requests
//! and exports their spans (decode, queue, compute, encode) over OTLP/HTTP.

pub mod access;
pub mod cache;
pub mod classify;
pub mod cli;
pub mod config;
pub mod ensemble;
pub mod error;
pub mod explain;
pub mod grpc;
pub mod http;
pub mod infer;
pub mod metrics;
pub mod model;
pub mod scheduler;
pub mod server;
pub mod stages;
pub mod state;
pub mod tls;
pub mod trace;
pub mod views;

pub use error::ServerError;
