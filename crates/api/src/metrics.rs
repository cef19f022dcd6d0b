//! `/metrics` in the Prometheus text format (the `metrics` facade with
//! `metrics-exporter-prometheus`). What is measured, and where:
//!
//! | metric | kind | labels | measured in |
//! |---|---|---|---|
//! | `chat_websocket_connections` | gauge | `door` | the socket driver (open sockets) |
//! | `chat_messages_accepted_total` | counter | | the send service (committed messages) |
//! | `chat_writer_batch_size` | histogram | | the message writer: messages per batch statement |
//! | `chat_writer_batches_retried_total` | counter | | the message writer: batch statements the database refused (then written one by one) |
//! | `chat_deliveries_total` | counter | | the hub (events queued to local sockets) |
//! | `chat_fanout_delay_seconds` | histogram | | the socket driver: commit → written to the socket |
//! | `chat_http_request_duration_seconds` | histogram | `method`, `route`, `status` | HTTP middleware |
//! | `chat_db_pool_connections` | gauge | `state` (`in_use`, `idle`, `waiting`) | sampled per scrape |
//! | `chat_redis_errors_total` | counter | | every Redis fault that was logged and tolerated |

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

/// Seconds; from 1 ms to 10 s.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Messages per writer batch; up to `chat_services::MAX_BATCH` (512).
const BATCH_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once (every server instance in a process shares it).
/// `None` when another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full("chat_writer_batch_size".into()),
                    &BATCH_BUCKETS,
                )
                .ok()?
                .install_recorder()
                .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
                .ok()
        })
        .clone()
}

/// `GET /metrics` → 200, Prometheus text format.
pub async fn render(state: web::Data<AppState>) -> HttpResponse {
    let status = state.store.db.status();
    let in_use = status.size.saturating_sub(status.available);
    metrics::gauge!("chat_db_pool_connections", "state" => "in_use").set(in_use as f64);
    metrics::gauge!("chat_db_pool_connections", "state" => "idle").set(status.available as f64);
    metrics::gauge!("chat_db_pool_connections", "state" => "waiting").set(status.waiting as f64);
    let body = install().map(|h| h.render()).unwrap_or_default();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body)
}

/// Times every HTTP request by method, route pattern (not the raw path: bounded labels) and
/// status.
pub async fn time_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    // A fixed set of labels: clients may send any method name.
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let response = next.call(req).await?;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("chat_http_request_duration_seconds", "method" => method, "route" => route, "status" => status)
        .record(started.elapsed().as_secs_f64());
    Ok(response)
}
