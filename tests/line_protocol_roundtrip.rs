//! Line protocol escaping proven against a real InfluxDB: hostile names and
//! values are written through the service's own encoder and v1 client and
//! read back unchanged. The harness's own reads are proven here too: a
//! point written during a read comes back whole or not at all.

mod support;

use docker_stats_service::config::{self, Overrides};
use docker_stats_service::schema::line_protocol::{PointBuilder, SeriesKey};
use docker_stats_service::writer::influx_v1::{quote_identifier, InfluxV1};
use support::influx::shared;

const HOSTILE: &[&str] = &[
    "plain",
    "with space",
    "comma,inside",
    "equals=inside",
    "double\"quote",
    "single'quote",
    r"back\slash",
    r"back\,slash-comma",
    r"\ leading backslash-space",
    "ünïcödé ☃ 日本",
    "all , = \" ' \\ of them",
];

/// InfluxDB 1.x reads a backslash directly before a comma, space or equals
/// sign differently in measurement names and field keys than in tags, so such
/// a sequence cannot be stored there (the service's own measurement and field
/// names never contain one). Tags and string values take everything.
fn name_safe(text: &str) -> String {
    text.replace("\\,", "/,")
        .replace("\\ ", "/ ")
        .replace("\\=", "/=")
}

fn client_for(db: &str) -> InfluxV1 {
    let influx = shared();
    let env = [
        ("INFLUXDB_HOST", "127.0.0.1".to_string()),
        ("INFLUXDB_PORT", influx.port.to_string()),
        ("INFLUXDB_DB", db.to_string()),
    ];
    let config = config::load(&Overrides::default(), |name| {
        env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    })
    .unwrap();
    InfluxV1::new(&config.influxdb, std::time::Duration::from_secs(10)).unwrap()
}

#[tokio::test]
async fn hostile_measurements_tags_fields_and_strings_read_back_unchanged() {
    let db = "hostile \"db\", with = signs";
    let client = client_for(db);
    client
        .create_database()
        .await
        .expect("creating a database with a hostile name");
    client
        .create_database()
        .await
        .expect("creating it again is a no-op");

    let mut body = String::new();
    for (i, text) in HOSTILE.iter().enumerate() {
        let measurement = format!("m {}", name_safe(text));
        let series = SeriesKey::new(&measurement, [(*text, *text), ("t", *text)]);
        let mut point = PointBuilder::new(&series);
        point
            .string(&format!("field {}", name_safe(text)), text)
            .int("n", i as i64);
        body.push_str(&point.finish(1_000 + i as i64).unwrap());
        body.push('\n');
    }
    client.write(body).await.expect("writing hostile points");

    let influx = shared();
    for (i, text) in HOSTILE.iter().enumerate() {
        let measurement = format!("m {}", name_safe(text));
        let q = format!("SELECT * FROM {}", quote_identifier(&measurement));
        let rows = influx.rows(db, &q).await;
        assert_eq!(rows.len(), 1, "measurement {measurement:?}: {rows:?}");
        let row = &rows[0];
        assert_eq!(row["time"].as_i64(), Some(1_000 + i as i64));
        assert_eq!(
            row[*text].as_str(),
            Some(*text),
            "tag key and value {text:?}"
        );
        assert_eq!(row["t"].as_str(), Some(*text));
        let field = format!("field {}", name_safe(text));
        assert_eq!(
            row[&field].as_str(),
            Some(*text),
            "string field of {text:?}"
        );
        assert_eq!(row["n"].as_i64(), Some(i as i64));
    }
}

#[tokio::test]
async fn newlines_and_trailing_backslashes_are_stored_in_their_documented_form() {
    let db = "lossy_forms";
    let client = client_for(db);
    client.create_database().await.unwrap();
    let series = SeriesKey::new("m", [("t", "two\nlines\\")]);
    let mut point = PointBuilder::new(&series);
    point.string("s", "two\nlines\\");
    client.write(point.finish(5).unwrap()).await.unwrap();
    let rows = shared().rows(db, "SELECT * FROM m").await;
    assert_eq!(
        rows[0]["t"].as_str(),
        Some("two lines"),
        "tag: newline to space, trailing backslash dropped"
    );
    assert_eq!(
        rows[0]["s"].as_str(),
        Some("two lines\\"),
        "string field: newline to space (it would end the line in a spool file), backslash kept"
    );
}

/// A point bringing a field new to its measurement, written while the
/// harness reads: without `rows`' second read it came back without that
/// field 6 times in 300 (round 3 on the first try here).
#[tokio::test(flavor = "multi_thread")]
async fn a_point_written_during_a_read_is_read_whole_or_not_at_all() {
    let influx = shared();
    let db = "read_whole";
    influx.execute(&format!("CREATE DATABASE {db}")).await;
    for round in 0..300 {
        let measurement = format!("events{round}");
        influx
            .write(
                db,
                &format!("{measurement},action=start message=\"started\" 1"),
            )
            .await;
        let query = format!("SELECT * FROM {measurement}");
        let reader = tokio::spawn(async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                assert!(
                    std::time::Instant::now() < deadline,
                    "round {round}: the die point never came back"
                );
                let rows = influx.rows(db, &query).await;
                if let Some(die) = rows.into_iter().find(|row| row["action"] == "die") {
                    return die;
                }
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        influx
            .write(
                db,
                &format!("{measurement},action=die message=\"died\",exit_code=137i 2"),
            )
            .await;
        let die = reader.await.unwrap();
        assert_eq!(
            die.get("exit_code").and_then(|code| code.as_i64()),
            Some(137),
            "round {round}: {die:?}"
        );
    }
}
