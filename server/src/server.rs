//! Start-up and the run loop: bind listeners, load models, serve until shutdown, drain.

use crate::access::Access;
use crate::cli::ServeArgs;
use crate::grpc::{HealthService, InferenceService};
use crate::model::control::ModelControl;
use crate::model::layout::Repository;
use crate::model::{LoadSettings, Registry};
use crate::state::AppState;
use crate::tls::{Tls, TlsFiles};
use crate::{http, metrics};
use osprey_protocol::grpc::health::health_server::HealthServer;
use osprey_protocol::grpc::inference::grpc_inference_service_server::GrpcInferenceServiceServer;
use osprey_runtimes::onnx::{locate_library, OnnxEnvironment};
use osprey_runtimes::RuntimeError;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("model repository {0} is not a directory")]
    NoRepository(String),
    #[error("{0}")]
    ModelName(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(String),
    #[error("the shutdown grace period ({0} s) ended with requests still in flight")]
    GraceExpired(u64),
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("{0}")]
    Access(#[from] crate::access::AccessError),
    #[error("{0} (--exit-on-error)")]
    ModelFailed(String),
}

/// The listeners, bound before anything is served (port 0 works).
pub struct Listeners {
    pub http: TcpListener,
    pub grpc: TcpListener,
    pub metrics: TcpListener,
    /// The admin REST listener (`--admin-port`).
    pub admin: Option<TcpListener>,
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

impl Listeners {
    pub async fn bind(args: &ServeArgs) -> Result<Listeners, StartError> {
        Ok(Listeners {
            http: bind(SocketAddr::new(
                args.http_address.unwrap_or(args.address),
                args.http_port,
            ))
            .await?,
            grpc: bind(SocketAddr::new(
                args.grpc_address.unwrap_or(args.address),
                args.grpc_port,
            ))
            .await?,
            metrics: bind(SocketAddr::new(
                args.metrics_address.unwrap_or(args.address),
                args.metrics_port,
            ))
            .await?,
            admin: match args.admin_port {
                Some(port) => Some(bind(SocketAddr::new(args.admin_address, port)).await?),
                None => None,
            },
        })
    }
}

/// Loads ONNX Runtime and the start-up models. A model that fails to load is logged and left
/// UNAVAILABLE; the others serve.
pub async fn build_state(args: &ServeArgs) -> Result<Arc<AppState>, StartError> {
    // The recorder must exist before any model registers its metric handles.
    metrics::install();
    if !args.model_repository.is_dir() {
        return Err(StartError::NoRepository(
            args.model_repository.display().to_string(),
        ));
    }
    let admin_only: &[String] = match args.admin_port {
        Some(_) => &args.admin_api,
        None => &[],
    };
    let access = (
        Access::new(
            "--http-restricted-api",
            &args.http_restricted_api,
            args.auth_token_file.as_deref(),
        )?
        .without(admin_only)?,
        Access::new(
            "--grpc-restricted-protocol",
            &args.grpc_restricted_protocol,
            args.auth_token_file.as_deref(),
        )?
        .without(admin_only)?,
    );
    let library = locate_library(args.onnxruntime_library.as_deref())?;
    let env = OnnxEnvironment::init(&library)?;
    tracing::info!(library = %library.display(), "ONNX Runtime loaded");
    match osprey_runtimes::gpu::devices() {
        Ok(gpus) => {
            for g in gpus {
                tracing::info!(index = g.index, uuid = %g.uuid, name = %g.name, memory_bytes = g.memory_total_bytes, "GPU");
            }
        }
        Err(e) => tracing::info!("{e} (KIND_GPU models will be UNAVAILABLE)"),
    }
    let settings = LoadSettings {
        intra_op_threads: args.intra_op_threads,
        intra_op_spinning: args.intra_op_spinning,
        default_max_batch_size: args.default_max_batch_size,
        queue_per_instance: args.queue_per_instance,
        batcher: args
            .batcher_max_latency_ms
            .map(|ms| crate::model::BatcherDefaults {
                max_latency: std::time::Duration::from_millis(ms),
                max_batch_size: args.batcher_max_batch_size,
            }),
        model_symlinks: args.model_symlinks,
        max_instances: args.max_instances_per_model,
        metrics: crate::metrics::MetricsConfig::from_settings(&args.metrics_config),
        cache: args
            .cache_config
            .map(|c| Arc::new(crate::cache::ResponseCache::new(c.size))),
        limits: crate::model::RequestLimits {
            max_bytes_elements: args.max_bytes_elements,
            timeout: (args.request_timeout_secs > 0)
                .then(|| Duration::from_secs(args.request_timeout_secs)),
        },
    };
    let repository = Repository::open(args.model_repository.clone(), args.model_name.as_deref())
        .map_err(StartError::ModelName)?;
    if let Some(name) = repository.single() {
        tracing::info!(
            model = name,
            "the model repository is one model's directory"
        );
    }
    let registry = Arc::new(Registry::new(repository, env, settings));
    let poll = args.model_control_mode == ModelControl::Poll;
    let startup = registry.load_order(if args.models.is_empty() || poll {
        registry.repository_models()
    } else {
        args.models.clone()
    });
    let started = Instant::now();
    for name in &startup {
        if let Err(e) = registry.load(name).await {
            if args.exit_on_error {
                return Err(StartError::ModelFailed(e.to_string()));
            }
            tracing::error!(model = %name, error = %e, "model failed to load; it stays UNAVAILABLE");
        }
    }
    tracing::info!(
        models = startup.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "start-up models processed"
    );
    let mut state = AppState::new(
        registry,
        startup,
        args.strict_readiness,
        args.http_max_body_bytes,
        access,
        crate::explain::ExplainLimits {
            max_features: args.explain_max_features,
            max_rows: args.explain_max_rows,
            timeout: Duration::from_secs(args.explain_timeout_secs.max(1)),
        },
    );
    state.model_control = args.model_control_mode;
    state.log_requests = args.log_requests;
    // The exporter starts even with tracing off: the trace setting API may turn it on.
    let config = crate::trace::config::TraceConfig::from_options(&args.trace_config);
    if config.enabled {
        tracing::info!(rate = config.rate, url = %config.url, "tracing requests (OTLP/HTTP)");
    }
    state.tracer = crate::trace::Tracer::start(&config);
    Ok(Arc::new(state))
}

/// Per-stream HTTP/2 receive window of the gRPC listener (hyper's default).
const GRPC_STREAM_WINDOW: u32 = 1 << 20;

/// Connection-wide HTTP/2 receive window of the gRPC listener. h2 also allows a connection
/// half its window of framing overhead in DATA frames under 256 bytes that wait unread, and
/// ends the connection with GOAWAY ENHANCE_YOUR_CALM past it. A ModelStreamInfer client that
/// sends each small request in its own frame, far ahead of the answers, fills a stream's window
/// with such frames while the stream has its 64 requests in flight: with hyper's 1 MiB
/// connection window that ended the connection after a few thousand messages. 32 MiB allows
/// about two streams full of the smallest possible requests (~30 bytes).
const GRPC_CONNECTION_WINDOW: u32 = 32 << 20;

/// Longest the exporter may take to send buffered spans at shutdown.
const TRACE_FLUSH: Duration = Duration::from_secs(3);

async fn until(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Serves REST, gRPC and metrics until `shutdown` resolves, then stops accepting, lets in-flight
/// requests finish for up to `grace`, and returns.
pub async fn run(
    state: Arc<AppState>,
    listeners: Listeners,
    args: &ServeArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let grace = Duration::from_secs(args.shutdown_grace_secs);
    let max_msg = args.grpc_max_message_bytes;

    for (what, l) in [
        ("HTTP", Some(&listeners.http)),
        ("gRPC", Some(&listeners.grpc)),
        ("metrics", Some(&listeners.metrics)),
        ("admin HTTP", listeners.admin.as_ref()),
    ] {
        let Some(l) = l else { continue };
        if let Ok(addr) = l.local_addr() {
            tracing::info!("{what} service listening on {addr}");
        }
    }

    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(Tls::load(&TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: args.tls_client_ca.clone(),
        })?),
        _ => None,
    };
    let header_timeout = (args.http_header_timeout_secs > 0)
        .then(|| Duration::from_secs(args.http_header_timeout_secs));
    let limits = http::serve::HttpLimits {
        max_connections: args.http_max_connections,
        header_timeout,
        max_streams: args.max_concurrent_streams,
    };
    let acceptor = tls
        .as_ref()
        .map(|t| tokio_rustls::TlsAcceptor::from(t.rest.clone()));
    let http_task = tokio::spawn(http::serve::serve(
        listeners.http,
        http::router(state.clone(), Arc::new(state.http_access.clone())),
        acceptor.clone(),
        limits,
        stop_rx.clone(),
    ));
    let admin_task = listeners.admin.map(|l| {
        tokio::spawn(http::serve::serve(
            l,
            http::router(state.clone(), Arc::new(state.http_access.admin())),
            acceptor,
            limits,
            stop_rx.clone(),
        ))
    });

    let inference = GrpcInferenceServiceServer::new(InferenceService::new(state.clone()))
        .max_decoding_message_size(max_msg)
        .max_encoding_message_size(max_msg);
    let health = HealthServer::new(HealthService::new(state.clone()));
    let incoming = crate::grpc::incoming::capped(listeners.grpc, args.grpc_max_connections);
    let mut builder = tonic::transport::Server::builder()
        .max_concurrent_streams(args.max_concurrent_streams)
        .initial_stream_window_size(GRPC_STREAM_WINDOW)
        .initial_connection_window_size(GRPC_CONNECTION_WINDOW)
        .http2_keepalive_interval(Some(Duration::from_secs(60)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)));
    if let Some(t) = &tls {
        let mut config = tonic::transport::ServerTlsConfig::new().identity(
            tonic::transport::Identity::from_pem(&t.cert_pem, &t.key_pem),
        );
        if let Some(ca) = &t.client_ca_pem {
            config = config.client_ca_root(tonic::transport::Certificate::from_pem(ca));
        }
        builder = builder
            .tls_config(config)
            .map_err(|e| StartError::Serve(format!("gRPC TLS: {e}")))?;
    }
    let grpc_task = tokio::spawn(
        builder
            .add_service(inference)
            .add_service(health)
            .serve_with_incoming_shutdown(incoming, until(stop_rx.clone())),
    );

    let metrics_app = metrics::router(metrics::install());
    let metrics_task = tokio::spawn(
        axum::serve(listeners.metrics, metrics_app)
            .with_graceful_shutdown(until(stop_rx.clone()))
            .into_future(),
    );

    if args.model_control_mode == ModelControl::Poll {
        tokio::spawn(crate::model::control::poll_repository(
            state.registry.clone(),
            Duration::from_secs(args.repository_poll_secs.max(1)),
            stop_rx.clone(),
        ));
    }

    shutdown.await;
    tracing::info!(
        grace_secs = grace.as_secs(),
        "shutting down: no new connections, draining in-flight requests"
    );
    state.begin_shutdown();
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(grace, async {
        let admin = async move {
            match admin_task {
                Some(t) => t.await,
                None => Ok(Ok(())),
            }
        };
        let (h, g, m, a) = tokio::join!(http_task, grpc_task, metrics_task, admin);
        let fail = |e: String| StartError::Serve(e);
        a.map_err(|e| fail(e.to_string()))?
            .map_err(|e| fail(e.to_string()))?;
        h.map_err(|e| fail(e.to_string()))?
            .map_err(|e| fail(e.to_string()))?;
        g.map_err(|e| fail(e.to_string()))?
            .map_err(|e| fail(e.to_string()))?;
        m.map_err(|e| fail(e.to_string()))?
            .map_err(|e| fail(e.to_string()))?;
        Ok::<(), StartError>(())
    })
    .await;
    // Spans still buffered leave now, within a short bound.
    state.tracer.flush(TRACE_FLUSH).await;
    match drained {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!("grace period over with requests still in flight; exiting");
            Err(StartError::GraceExpired(grace.as_secs()))
        }
    }
}
