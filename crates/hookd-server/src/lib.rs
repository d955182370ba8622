//! hookd's HTTP side: the Svix-compatible v1 API, authentication and
//! idempotency. The binary builds an [`AppState`] from its configuration and
//! hands [`serve`] an already-bound listener.

pub mod auth;
pub mod dispatch;
pub mod error;
pub mod extract;
pub mod fanout;
pub mod idempotency;
pub mod outbound;
pub mod pagination;
pub mod v1;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use hookd_core::model::Delivery;
use hookd_queue::Queue;
use hookd_store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::normalize_path::NormalizePathLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// Settings the API needs. Every field is documented in the binary's config.
#[derive(Clone)]
pub struct ServerConfig {
    /// Operator token from `HOOKD_ADMIN_TOKEN`, accepted as an admin token.
    pub admin_token: Option<String>,
    /// Refuse `http://` endpoint URLs.
    pub https_only: bool,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Base URL under which this server is reachable (used in portal links).
    pub public_url: String,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field("https_only", &self.https_only)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("public_url", &self.public_url)
            .finish()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            admin_token: None,
            https_only: false,
            max_body_bytes: 2 * 1024 * 1024,
            public_url: "http://127.0.0.1:8071".into(),
        }
    }
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub config: ServerConfig,
    pub tokens: auth::TokenCache,
    /// Where new deliveries are announced so dispatch starts without polling.
    pub queue: Arc<dyn Queue>,
    /// Where accepted messages go to be fanned out.
    pub fanouts: fanout::FanOuts,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state and starts its fan-out stage on the current runtime.
    pub fn new(store: Arc<dyn Store>, queue: Arc<dyn Queue>, config: ServerConfig) -> Self {
        let fanouts = fanout::FanOuts::spawn(store.clone(), queue.clone());
        Self(Arc::new(Inner {
            store,
            config,
            tokens: auth::TokenCache::default(),
            queue,
            fanouts,
        }))
    }

    /// Hands freshly committed deliveries to the queue. The store already has
    /// them, so a failure here delays delivery (until the next start-up sweep)
    /// but loses nothing.
    pub async fn enqueue(&self, deliveries: &[Delivery], manual: bool) {
        let tasks = deliveries
            .iter()
            .map(|d| dispatch::task_for(d, manual))
            .collect();
        push_tasks(&self.queue, tasks).await;
    }

    /// [`AppState::enqueue`] for the deliveries of a message just created,
    /// handing the worker what it would otherwise read back. `epoch` is the
    /// store's content epoch read before the message was stored.
    pub async fn enqueue_fresh(
        &self,
        deliveries: &[Delivery],
        msg: &Arc<hookd_core::model::Message>,
        epoch: u64,
    ) {
        let tasks = dispatch::fresh_tasks(deliveries, msg, self.queue.hint_budget(), epoch);
        push_tasks(&self.queue, tasks).await;
    }
}

/// Pushes tasks for deliveries already committed. A shared queue that is slow
/// or down must not hold up the caller (an API answer): the push then runs on
/// its own, and the workers' sweeps pick up any push that fails.
pub(crate) async fn push_tasks(queue: &Arc<dyn Queue>, tasks: Vec<hookd_queue::Task>) {
    if tasks.is_empty() {
        return;
    }
    let q = queue.clone();
    let push = async move {
        if let Err(e) = q.push(tasks).await {
            tracing::error!(error = %e, "could not enqueue deliveries; they stay pending in the store");
        }
    };
    if queue.shared_limits().is_some() {
        tokio::spawn(push);
    } else {
        push.await;
    }
}

#[derive(OpenApi)]
#[openapi(info(
    title = "hookd API",
    description = "Webhook delivery service, compatible with the Svix API v1. hookd extensions are marked as such."
))]
struct ApiDoc;

/// The OpenAPI document generated from the route annotations.
pub fn openapi() -> utoipa::openapi::OpenApi {
    OpenApiRouter::<AppState>::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", v1::routes())
        .split_for_parts()
        .1
}

pub fn router(state: AppState) -> Router {
    let (api, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", v1::routes())
        .split_for_parts();
    let doc = Arc::new(doc);
    api.route("/health/ready", get(ready))
        .route(
            "/api/v1/openapi.json",
            get(move || std::future::ready(axum::Json(doc.as_ref().clone()))),
        )
        .fallback(|| async { error::ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { error::ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::middleware,
        ))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Readiness: 200 while the store and the queue answer, else 503 naming the
/// backend that does not. Load balancers should route by this, not by liveness.
async fn ready(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    // A backend that does not answer within a second counts as down.
    let within = std::time::Duration::from_secs(1);
    let store = match tokio::time::timeout(within, state.store.ping()).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("store: {e}")),
        Err(_) => Some("store: no answer within 1 s".into()),
    };
    let queue = match tokio::time::timeout(within, state.queue.len()).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(format!("queue: {e}")),
        Err(_) => Some("queue: no answer within 1 s".into()),
    };
    let problems: Vec<String> = store.into_iter().chain(queue).collect();
    if problems.is_empty() {
        (
            axum::http::StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ready"})),
        )
            .into_response()
    } else {
        let body = serde_json::json!({"status": "unready", "problems": problems});
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(body),
        )
            .into_response()
    }
}

/// The routes a worker-only node serves: liveness and readiness, no API.
pub fn worker_router(state: AppState) -> Router {
    Router::new()
        .route(
            "/api/v1/health",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .route("/health/ready", get(ready))
        .fallback(|| async {
            error::ApiError::NotFound("this node runs delivery workers only".into())
        })
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` is cancelled, then lets
/// in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_router(listener, router(state), shutdown).await
}

/// Serves `app` on `listener` until `shutdown`, letting open requests finish.
///
/// A trailing slash is dropped from the path before routing, so that
/// `POST /api/v1/app/` (the form Svix's own curl examples use) reaches the
/// same handler as `/api/v1/app`. A layer added to the `Router` runs after
/// routing, so the normalisation wraps the router from outside.
pub async fn serve_router(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    use tower::Layer as _;
    let app = NormalizePathLayer::trim_trailing_slash().layer(app);
    axum::serve(
        listener,
        axum::ServiceExt::<axum::extract::Request>::into_make_service(app),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await
}
