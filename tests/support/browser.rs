//! A page in a real browser: Debian's headless `chromium` renders it to a
//! PNG and dumps its DOM, with its network log kept.
//!
//! Chromium talks to Google's servers by itself (time, updates, accounts).
//! None of that may leave the machine: every connection goes through a
//! proxy on a closed loopback port and every host name resolves to
//! nothing. The network log tells the page's requests (made by a document,
//! so with a document initiator) from the browser's own ("not an origin").

use std::path::{Path, PathBuf};
use std::process::Command;

use super::influx::{tempdir, which};

pub struct Rendered {
    pub png: PathBuf,
    pub width: u32,
    pub height: u32,
    /// RGB pixels, row by row.
    pub pixels: Vec<[u8; 3]>,
    /// The DOM as the browser built it.
    pub dom: String,
    /// URLs the page itself asked for (not the page's own file).
    pub page_requests: Vec<String>,
}

fn chromium(args: &[&str]) -> std::process::Output {
    let program = which("chromium")
        .expect("chromium not found: install Debian's `chromium` package (the README's test command does this)");
    let mut command = Command::new(program);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--force-device-scale-factor=1",
        "--proxy-server=http://127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND",
    ]);
    command.args(args);
    command.output().expect("running chromium")
}

/// Renders `page` at `width` x `height` CSS pixels.
pub fn render(page: &Path, width: u32, height: u32) -> Rendered {
    let dir = PathBuf::from(tempdir("dss-browser"));
    let png = dir.join("page.png");
    let netlog = dir.join("netlog.json");
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let shot = chromium(&[
        &format!("--window-size={width},{height}"),
        &format!("--screenshot={}", png.display()),
        &format!("--log-net-log={}", netlog.display()),
        &url,
    ]);
    assert!(
        png.exists(),
        "chromium wrote no screenshot: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let dump = chromium(&["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&dump.stdout).to_string();
    assert!(
        dom.contains("</html>"),
        "chromium dumped no DOM: {}",
        String::from_utf8_lossy(&dump.stderr)
    );

    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buffer).unwrap();
    let channels = info.color_type.samples();
    let pixels = buffer[..info.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    Rendered {
        png,
        width: info.width,
        height: info.height,
        pixels,
        dom,
        page_requests: page_requests(&netlog, &url),
    }
}

/// URL requests started by a document (any initiator but the browser's
/// own "not an origin"), other than the page itself.
fn page_requests(netlog: &Path, page_url: &str) -> Vec<String> {
    let text = std::fs::read_to_string(netlog).expect("chromium's network log");
    // Chromium may stop before closing the JSON: close it.
    let log: serde_json::Value = serde_json::from_str(&text)
        .or_else(|_| serde_json::from_str(&format!("{}]}}", text.trim_end().trim_end_matches(','))))
        .expect("a readable network log");
    let types = &log["constants"]["logEventTypes"];
    let start_job = types["URL_REQUEST_START_JOB"].as_u64().unwrap();
    log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"].as_u64() == Some(start_job))
        .filter_map(|e| {
            let params = &e["params"];
            let url = params["url"].as_str()?;
            let initiator = params["initiator"].as_str().unwrap_or("");
            (initiator != "not an origin" && url != page_url).then(|| url.to_string())
        })
        .collect()
}

impl Rendered {
    /// How many pixels are within `tolerance` of `color` on every channel.
    pub fn pixels_near(&self, color: [u8; 3], tolerance: u8) -> usize {
        self.pixels
            .iter()
            .filter(|p| (0..3).all(|i| p[i].abs_diff(color[i]) <= tolerance))
            .count()
    }
}

/// What the layout of `page` is at `width` x `height` CSS pixels, measured
/// by chromium itself: the page's width against the window's, and per
/// chart (`figure`) its legend entries' boxes and every polyline's points,
/// in the page's coordinates, with their stroke colour.
///
/// The report forbids scripts, so the measuring script runs in a copy of
/// the page without its Content-Security-Policy; the layout is the same.
pub fn layout(page: &Path, width: u32, height: u32) -> serde_json::Value {
    const MEASURE: &str = r#"<script>
(function () {
  const box = (r) => [r.left, r.top, r.right, r.bottom];
  const root = document.documentElement;
  const out = { scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, figures: [] };
  for (const figure of document.querySelectorAll('figure')) {
    const svg = figure.querySelector('svg');
    const matrix = svg.getScreenCTM();
    const lines = [...svg.querySelectorAll('polyline')].map((line) => ({
      stroke: (line.getAttribute('stroke') || '').toLowerCase(),
      points: [...line.points].map((p) => {
        const q = new DOMPoint(p.x, p.y).matrixTransform(matrix);
        return [q.x, q.y];
      }),
    }));
    out.figures.push({
      container: figure.dataset.container,
      metric: figure.dataset.metric,
      svg: box(svg.getBoundingClientRect()),
      legend: [...figure.querySelectorAll('figcaption .key')].map((key) => ({
        text: key.textContent,
        box: box(key.getBoundingClientRect()),
      })),
      lines,
    });
  }
  const pre = document.createElement('pre');
  pre.id = 'measured';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"#;
    let dir = PathBuf::from(tempdir("dss-layout"));
    let copy = dir.join("measured.html");
    let html = std::fs::read_to_string(page).expect("the page");
    let csp_start = html
        .find("<meta http-equiv=\"Content-Security-Policy\"")
        .expect("the page's Content-Security-Policy");
    let csp_end = csp_start + html[csp_start..].find('>').unwrap() + 1;
    let measured = format!("{}{}", &html[..csp_start], &html[csp_end..])
        .replace("</body>", &format!("{MEASURE}</body>"));
    std::fs::write(&copy, measured).unwrap();
    let url = format!("file://{}", copy.display());
    let dump = chromium(&[
        &format!("--window-size={width},{height}"),
        "--dump-dom",
        &url,
    ]);
    let dom = String::from_utf8_lossy(&dump.stdout).to_string();
    let start = dom.find("<pre id=\"measured\">").unwrap_or_else(|| {
        panic!(
            "the measuring script left nothing: {}",
            String::from_utf8_lossy(&dump.stderr)
        )
    }) + "<pre id=\"measured\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    let json = dom[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let _ = std::fs::remove_dir_all(&dir);
    serde_json::from_str(&json).expect("the measurements as JSON")
}
