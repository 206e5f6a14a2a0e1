//! End-to-end test of the readiness example: its config behind
//! `storage_availability::axum::router`, served on 127.0.0.1 on a free port, queried with a
//! real HTTP client.

#[path = "../examples/readiness.rs"]
#[allow(dead_code)]
mod readiness;

use std::sync::Arc;

use readiness::ServiceConfig;
use storage_availability::AvailabilityCache;

/// Serves the router for `config` and returns its base URL.
async fn serve(config: ServiceConfig, dir: &std::path::Path) -> String {
    let cache = AvailabilityCache::open_async(config, dir.join("service.toml"))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = storage_availability::axum::router(Arc::new(cache));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
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
