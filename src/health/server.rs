//! The HTTP listener for `/health` and `/metrics`, and the `healthcheck`
//! client that asks it (so an image needs no curl for its HEALTHCHECK).

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::{web, App, HttpResponse, HttpServer};

use super::{metrics, Health};

async fn health_report(state: web::Data<Arc<Health>>) -> HttpResponse {
    let report = state.report();
    let mut response = if report.failing.is_empty() {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    response.json(report)
}

async fn metrics_text(state: web::Data<Arc<Health>>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics::render(&state))
}

/// Binds `listen` and serves on the current System's arbiter; returns the
/// address actually bound (port 0 picks a free one).
pub fn start(listen: &str, health: Arc<Health>) -> std::io::Result<SocketAddr> {
    let data = web::Data::new(health);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/health", web::get().to(health_report))
            .route("/metrics", web::get().to(metrics_text))
    })
    .workers(1)
    .disable_signals()
    .bind(listen)?;
    let address = server.addrs().first().copied().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "no address bound")
    })?;
    actix_rt::spawn(server.run());
    Ok(address)
}

/// Asks a running service's `/health`: `Ok(true)` when it answers 200.
pub async fn ask(listen: &str) -> Result<(bool, String), String> {
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
