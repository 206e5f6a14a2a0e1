//! End-to-end test of the readiness example: its config behind
//! `storage_availability::axum::router`, served on 127.0.0.1 on a free port, queried with a
//! real HTTP client.

#[path = "../examples/readiness.rs"]
#[allow(dead_code)]
mod readiness;

use std::time::{Duration, Instant};

use readiness::ServiceConfig;
use storage_availability::Refresher;

/// Serves the example's service for `config` and returns its base URL and refresher.
async fn serve_with(
    config: ServiceConfig,
    dir: &std::path::Path,
    recheck_every: Duration,
) -> (String, Refresher) {
    let (app, refresher) = readiness::service(config, &dir.join("service.toml"), recheck_every)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), refresher)
}

async fn serve(config: ServiceConfig, dir: &std::path::Path) -> String {
    let (base, refresher) = serve_with(config, dir, Duration::from_secs(30)).await;
    drop(refresher); // these tests read the answers of `open` only
    base
}

async fn get(url: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/health+json");
    let body = response.text().await.unwrap();
    (status, serde_json::from_str(&body).unwrap())
}

fn check<'a>(body: &'a serde_json::Value, section: &str) -> &'a serde_json::Value {
    &body["checks"][format!("{section}:availability")][0]
}

#[tokio::test]
async fn ready_is_200_when_every_required_section_is_available() {
    let dir = tempfile::tempdir().unwrap();
    // A live "key-value store": a listener on a free loopback port.
    let kv = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ServiceConfig {
        data: dir.path().join("data"),
        kv: kv.local_addr().unwrap().to_string(),
        search: None,
    };
    let base = serve(config, dir.path()).await;

    for route in ["ready", "health"] {
        let (status, body) = get(&format!("{base}/{route}")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "pass");
        let kv = check(&body, "key_value");
        assert_eq!(kv["status"], "pass");
        assert_eq!(kv["componentId"], "key_value");
        assert!(kv["time"].as_str().unwrap().ends_with('Z'), "{kv}");
        assert_eq!(check(&body, "data")["status"], "pass");
        let search = check(&body, "search");
        assert_eq!(
            search["status"], "pass",
            "not configured is never a failure"
        );
        assert_eq!(search["output"], "not configured");
        let mut names: Vec<&String> = body["checks"].as_object().unwrap().keys().collect();
        names.sort();
        assert_eq!(
            names,
            [
                "data:availability",
                "key_value:availability",
                "search:availability"
            ]
        );
    }
}

#[tokio::test]
async fn ready_is_503_when_a_validator_fails() {
    let dir = tempfile::tempdir().unwrap();
    // A port that was free a moment ago: nothing listens there now.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let config = ServiceConfig {
        data: dir.path().join("data"),
        kv: closed.to_string(),
        search: None,
    };
    let base = serve(config, dir.path()).await;

    let (status, body) = get(&format!("{base}/ready")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "fail");
    let kv = check(&body, "key_value");
    assert_eq!(kv["status"], "fail");
    assert!(
        kv["output"].as_str().unwrap().contains("cannot connect"),
        "{kv}"
    );
    assert_eq!(check(&body, "data")["status"], "pass");
}

#[tokio::test]
async fn an_optional_section_down_is_warn_and_200() {
    let dir = tempfile::tempdir().unwrap();
    let kv = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let config = ServiceConfig {
        data: dir.path().join("data"),
        kv: kv.local_addr().unwrap().to_string(),
        search: Some(closed.to_string()),
    };
    let base = serve(config, dir.path()).await;

    let (status, body) = get(&format!("{base}/ready")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "warn");
    let search = check(&body, "search");
    assert_eq!(search["status"], "warn");
    assert!(
        search["output"]
            .as_str()
            .unwrap()
            .contains("cannot connect")
    );
}

/// The acceptance: the example, its dependency killed while it runs, answers 503
/// within `recheck_every` plus the check's timeout (1 s), and 200 again once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_turns_503_within_recheck_plus_timeout_after_the_dependency_dies() {
    let dir = tempfile::tempdir().unwrap();
    let kv = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let kv_addr = kv.local_addr().unwrap();
    let config = ServiceConfig {
        data: dir.path().join("data"),
        kv: kv_addr.to_string(),
        search: None,
    };
    let recheck = Duration::from_secs(1);
    let (base, refresher) = serve_with(config, dir.path(), recheck).await;
    assert_eq!(get(&format!("{base}/ready")).await.0, 200);

    let bound = recheck + Duration::from_secs(1) + Duration::from_millis(1500);
    drop(kv);
    let died = Instant::now();
    while get(&format!("{base}/ready")).await.0 != 503 {
        assert!(
            died.elapsed() < bound,
            "still 200 after {:?}",
            died.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kv = tokio::net::TcpListener::bind(kv_addr).await.unwrap();
    let back = Instant::now();
    while get(&format!("{base}/ready")).await.0 != 200 {
        assert!(
            back.elapsed() < bound,
            "still 503 after {:?}",
            back.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    refresher.stop();
    drop(kv);
}
