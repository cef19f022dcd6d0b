//! Request logging: every HTTP request and every WebSocket session runs inside a span carrying its
//! `request_id` (`tracing-actix-web`), so every log line of it can be found together.
//!
//! The span records the method and the route *path* only — never the query string, which may hold
//! an access token (`?token=`) — and no bodies, so no secret or message text reaches the logs.

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder, TracingLogger};

/// The root span of a request: `http.method`, `http.path` (no query), `request_id`; the status
/// is recorded at the end (errors as by the default builder).
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request.extensions().get::<RequestId>().copied();
        tracing::info_span!(
            "request",
            http.method = %request.method(),
            http.path = %request.path(),
            request_id = %request_id.map(|id| id.to_string()).unwrap_or_default(),
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// The logging middleware every listener wraps its app in.
pub fn middleware() -> TracingLogger<RequestSpan> {
    TracingLogger::<RequestSpan>::new()
}
