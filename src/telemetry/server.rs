//! The HTTP listener for `/health` and `/metrics`, and the `healthcheck`
//! client that asks it (so an image needs no curl for its HEALTHCHECK).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use super::health::{failing_for_liveness, Health, HealthScope};
use super::metrics;

/// At most this many connections are open at once; a new one closes the
/// oldest, so idle or slow clients can neither hold the file descriptors
/// the stats streams need nor lock out a real health check.
const MAX_CONNECTIONS: usize = 32;
/// A request's headers must arrive within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// No connection lives longer than this, idle or not (one request each).
const CONNECTION_DEADLINE: Duration = Duration::from_secs(15);

/// Binds `listen` and serves on the current runtime, beside the actors: a
/// separate server thread would wake on its own timers while nobody asks.
/// Returns the address actually bound (port 0 picks a free one).
pub fn start(listen: &str, health: Arc<Health>) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(listen)?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    actix_rt::spawn(async move {
        let mut open: std::collections::VecDeque<tokio::task::JoinHandle<()>> =
            std::collections::VecDeque::new();
        loop {
            let socket = match listener.accept().await {
                Ok((socket, _)) => socket,
                Err(error) => {
                    // Out of file descriptors, usually: wait rather than spin.
                    log::warn!("health endpoint cannot accept a connection: {error}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            open.retain(|task| !task.is_finished());
            if open.len() >= MAX_CONNECTIONS {
                if let Some(oldest) = open.pop_front() {
                    oldest.abort();
                }
            }
            open.push_back(actix_rt::spawn(serve(socket, Arc::clone(&health))));
        }
    });
    Ok(address)
}

/// Answers one request on `socket`, within the deadlines above.
async fn serve(socket: tokio::net::TcpStream, health: Arc<Health>) {
    let answer = hyper::service::service_fn(move |request| {
        let response = respond(&request, &health);
        async move { Ok::<_, Infallible>(response) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(false)
        .serve_connection(TokioIo::new(socket), answer);
    let _ = tokio::time::timeout(CONNECTION_DEADLINE, connection).await;
}

fn respond<B>(request: &Request<B>, health: &Health) -> Response<Full<Bytes>> {
    if !matches!(request.uri().path(), "/health" | "/metrics") {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: try /health or /metrics\n",
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    if request.uri().path() == "/metrics" {
        let mut response = Response::new(Full::from(metrics::render(health)));
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        return response;
    }
    let report = health.report();
    let status = if report.failing.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::to_vec(&report).unwrap_or_default();
    let mut response = Response::new(Full::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::from(text));
    *response.status_mut() = status;
    response
}

/// Asks a running service's `/health`: `Ok(true)` when it answers 200.
/// `healthcheck`: asks the service at `listen` and judges its answer by
/// `scope`; the error says what is wrong.
pub async fn check(listen: &str, scope: HealthScope) -> Result<(), String> {
    let (healthy, body) = ask(listen).await?;
    match scope {
        _ if healthy => Ok(()),
        HealthScope::All => Err(format!("unhealthy: {body}")),
        HealthScope::Liveness => {
            let failing = failing_for_liveness(&body)?;
            if failing.is_empty() {
                Ok(())
            } else {
                Err(format!("unhealthy ({}): {body}", failing.join(", ")))
            }
        }
    }
}

async fn ask(listen: &str) -> Result<(bool, String), String> {
    let mut address: SocketAddr = listen.parse().map_err(|e| format!("{listen}: {e}"))?;
    // A service listening on every interface is asked on loopback.
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .get(format!("http://{address}/health"))
        .send()
        .await
        .map_err(|e| format!("no answer from http://{address}/health: {e}"))?;
    let healthy = response.status().is_success();
    let body = response.text().await.unwrap_or_default();
    Ok((healthy, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::counters::Counters;

    fn ask(method: Method, path: &str) -> Response<Full<Bytes>> {
        let health = Health::new(Arc::new(Counters::default()), Duration::from_secs(60));
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap();
        respond(&request, &health)
    }

    #[test]
    fn health_answers_json_and_metrics_prometheus_text() {
        let health = ask(Method::GET, "/health");
        // Nothing is connected yet, so the checks fail.
        assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(health.headers()[CONTENT_TYPE], "application/json");
        let metrics = ask(Method::GET, "/metrics");
        assert_eq!(metrics.status(), StatusCode::OK);
        assert!(metrics.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"));
    }

    #[test]
    fn other_paths_and_methods_are_refused_with_what_to_do() {
        assert_eq!(ask(Method::GET, "/").status(), StatusCode::NOT_FOUND);
        let post = ask(Method::POST, "/health");
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(post.headers()[ALLOW], "GET, HEAD");
    }
}
