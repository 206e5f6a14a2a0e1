//! End-to-end test of the readiness example: the real router served on 127.0.0.1 on a free
//! port, queried with a real HTTP client.

#[path = "../examples/readiness.rs"]
#[allow(dead_code)]
mod readiness;

use std::sync::Arc;

use readiness::{AppState, ServiceConfig, ServiceConfigKind, router};
use storage_availability::AvailabilityCache;

/// Serves the example's router for `config` and returns its base URL.
async fn serve(config: ServiceConfig, dir: &std::path::Path) -> String {
    let cache = AvailabilityCache::open_async(config, dir.join("service.toml"))
        .await
        .unwrap();
    let state = AppState {
        cache: Arc::new(cache),
        required: Arc::from([ServiceConfigKind::Data, ServiceConfigKind::Kv]),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    format!("http://{addr}")
}

async fn get(url: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    (status, serde_json::from_str(&body).unwrap())
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

    let (status, body) = get(&format!("{base}/ready")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ready"], true);
    let kv = &body["sections"]["key_value"];
    assert_eq!(kv["validation_passed"], true);
    assert_eq!(kv["section_hash"].as_str().unwrap().len(), 64);
    assert!(body["sections"].get("search").is_none(), "not required");

    let (status, body) = get(&format!("{base}/availability")).await;
    assert_eq!(status, 200);
    let names: Vec<&String> = body["sections"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["data", "key_value", "search"]);
    assert_eq!(body["sections"]["search"]["enabled"], false);
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
    assert_eq!(body["ready"], false);
    let kv = &body["sections"]["key_value"];
    assert_eq!(kv["validation_passed"], false);
    assert!(
        kv["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{kv}"
    );
    assert_eq!(body["sections"]["data"]["validation_passed"], true);
}
