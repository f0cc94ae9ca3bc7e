//! One interface over both write APIs, so batching, retries, buffering and
//! error classification are the same whichever the server speaks.

use std::time::Duration;

use crate::config::{Api, InfluxConfig};
use crate::writer::error::WriteError;
use crate::writer::influx_v1::InfluxV1;
use crate::writer::influx_v2::InfluxV2;

/// How long one write request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client settings both APIs share: timeouts, no redirects (one
/// would turn the POST into a GET that stores nothing), and the private CA
/// when one is configured. Certificates are always verified.
pub fn http_builder(
    config: &InfluxConfig,
    request_timeout: Duration,
) -> Result<reqwest::ClientBuilder, WriteError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(request_timeout)
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(60));
    if let Some(path) = &config.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| WriteError::Client(format!("cannot read {}: {e}", path.display())))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            WriteError::Client(format!(
                "{} (INFLUXDB_CA_FILE) holds no usable certificate: {e}",
                path.display()
            ))
        })?;
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    Ok(builder)
}

pub enum InfluxClient {
    V1(InfluxV1),
    V2(InfluxV2),
}

impl InfluxClient {
    pub fn new(config: &InfluxConfig) -> Result<Self, WriteError> {
        Ok(match config.api {
            Api::V1 => InfluxClient::V1(InfluxV1::new(config, REQUEST_TIMEOUT)?),
            Api::V2 => InfluxClient::V2(InfluxV2::new(config, REQUEST_TIMEOUT)?),
        })
    }

    pub fn url(&self) -> &str {
        match self {
            InfluxClient::V1(c) => c.url(),
            InfluxClient::V2(c) => c.url(),
        }
    }

    /// The database (v1) or bucket (v2) written to.
    pub fn database(&self) -> &str {
        match self {
            InfluxClient::V1(c) => c.database(),
            InfluxClient::V2(c) => c.bucket(),
        }
    }

    pub async fn write(&self, body: String) -> Result<(), WriteError> {
        match self {
            InfluxClient::V1(c) => c.write(body).await,
            InfluxClient::V2(c) => c.write(body).await,
        }
    }

    /// Creates the v1 database if missing; v2 buckets are the operator's.
    pub async fn create_database(&self) -> Result<(), WriteError> {
        match self {
            InfluxClient::V1(c) => c.create_database().await,
            InfluxClient::V2(_) => Ok(()),
        }
    }
}
