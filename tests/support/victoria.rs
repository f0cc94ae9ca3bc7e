//! A real VictoriaMetrics (Debian's `victoria-metrics`) on a free loopback
//! port: it accepts InfluxDB line protocol on `/api/v2/write`, which makes it
//! the v2 write path's real server here. Points come back through its export
//! API as `<measurement>_<field>` series labelled with the tags.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::influx::{tempdir, which};

pub struct Victoria {
    pub port: u16,
    dir: String,
    child: std::process::Child,
}

/// One exported series: its labels and its (millisecond time, value) pairs.
#[derive(Debug, Clone)]
pub struct Series {
    pub labels: HashMap<String, String>,
    pub points: Vec<(i64, f64)>,
}

impl Victoria {
    pub fn start() -> Victoria {
        let binary = which("victoria-metrics").expect(
            "victoria-metrics not found: install Debian's `victoria-metrics` package (the README's test command does this)",
        );
        let dir = tempdir("dss-victoria");
        let port = super::free_port();
        let child = Command::new(binary)
            .args([
                &format!("-storageDataPath={dir}/data"),
                &format!("-httpListenAddr=127.0.0.1:{port}"),
                "-loggerLevel=ERROR",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting victoria-metrics");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "victoria-metrics did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Victoria { port, dir, child }
    }

    /// Every series whose name matches `regex`, as stored.
    pub async fn export(&self, regex: &str) -> Vec<Series> {
        let text = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}/api/v1/export", self.port))
            .query(&[("match[]", format!("{{__name__=~\"{regex}\"}}"))])
            .send()
            .await
            .expect("exporting from victoria-metrics")
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let v: Value = serde_json::from_str(line).unwrap();
                let labels = v["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect();
                let times = v["timestamps"].as_array().unwrap();
                let values = v["values"].as_array().unwrap();
                let points = times
                    .iter()
                    .zip(values)
                    .map(|(t, v)| (t.as_i64().unwrap(), v.as_f64().unwrap()))
                    .collect();
                Series { labels, points }
            })
            .collect()
    }
}

impl Drop for Victoria {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
