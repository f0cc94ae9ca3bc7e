//! InfluxDB v2 write API (`/api/v2/write`, token auth) through the
//! `influxdb2` crate: InfluxDB 2.x, 3.x's v2-compatible endpoint, and 1.8's
//! compatibility endpoint (token `user:password`, bucket `database/rp`).
//!
//! The crate neither retries nor buffers, and consumes the body it sends;
//! the BatchWriterActor encodes each batch itself, so a retry resends exactly the
//! same bytes. Buckets are not created: that needs an organization id and
//! an all-access token, which a collector should not hold.

use std::time::Duration;

use crate::config::InfluxConfig;
use crate::writer::error::{Credentials, WriteError};

pub struct InfluxV2 {
    client: influxdb2::Client,
    base_url: String,
    org: String,
    bucket: String,
}

impl InfluxV2 {
    pub fn new(config: &InfluxConfig, request_timeout: Duration) -> Result<Self, WriteError> {
        let http = crate::writer::client::http_builder(config, request_timeout)?;
        let client = influxdb2::ClientBuilder::with_builder(
            http,
            config.base_url(),
            config.org.clone(),
            config.token.expose().to_string(),
        )
        .build()
        .map_err(|e| WriteError::Client(e.to_string()))?;
        Ok(InfluxV2 {
            client,
            base_url: config.base_url(),
            org: config.org.clone(),
            bucket: config.bucket.clone(),
        })
    }

    pub fn url(&self) -> &str {
        &self.base_url
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub async fn write(&self, body: String) -> Result<(), WriteError> {
        self.client
            .write_line_protocol(&self.org, &self.bucket, body)
            .await
            .map_err(|error| match error {
                influxdb2::RequestError::ReqwestProcessing { source } => {
                    WriteError::from_transport(&self.base_url, source)
                }
                influxdb2::RequestError::Http { status, text } => WriteError::from_response(
                    &self.base_url,
                    &Credentials::Token,
                    &self.bucket,
                    status.as_u16(),
                    &text,
                    None,
                ),
                other => WriteError::Client(other.to_string()),
            })
    }
}
