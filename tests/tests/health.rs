//! The health report (`application/health+json`) and the axum router (feature `axum`), end to
//! end: a real TCP dependency the test owns, the router served on 127.0.0.1, queried with a
//! plain HTTP/1.1 client over `std::net::TcpStream`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use storage_availability::{
    AvailabilityCache, Health, HealthStatus, Outcome, StorageAvailability, checks,
};

#[derive(serde::Serialize, StorageAvailability)]
struct Service {
    /// A key-value store at `host:port`: required.
    #[storage(validate = ping, deref, name = "key_value")]
    kv: String,
    /// A search service at `host:port`: the service works without it.
    #[storage(validate = ping, deref, optional)]
    search: String,
    /// Not configured here.
    #[storage(validate = ping, deref)]
    vector: Option<String>,
}

fn ping(addr: &str) -> Outcome {
    checks::tcp_connect(addr, Duration::from_millis(500))
}

/// A loopback address where nothing listens (it was free a moment ago).
fn closed_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

struct Reply {
    status: u16,
    content_type: String,
    body: serde_json::Value,
}

/// `GET path` over a fresh connection, HTTP/1.1 with `Connection: close`.
fn get(addr: SocketAddr, path: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let content_type = lines
        .filter_map(|line| line.split_once(": "))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| value.to_owned())
        .unwrap_or_default();
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    Reply {
        status,
        content_type,
        body,
    }
}

/// Serves `storage_availability::axum::router(cache)` on a free loopback port.
fn serve(runtime: &tokio::runtime::Runtime, cache: Arc<AvailabilityCache<Service>>) -> SocketAddr {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = storage_availability::axum::router(cache);
    runtime.spawn(async move { axum::serve(listener, app).await });
    addr
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn check<'a>(body: &'a serde_json::Value, section: &str) -> &'a serde_json::Value {
    let checks = &body["checks"][format!("{section}:availability")];
    assert_eq!(checks.as_array().map(Vec::len), Some(1), "{body}");
    &checks[0]
}

#[test]
fn ready_is_200_pass_then_503_fail_when_the_dependency_dies() {
    let dir = tempfile::tempdir().unwrap();
    let kv = TcpListener::bind("127.0.0.1:0").unwrap();
    let search = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = Service {
        kv: kv.local_addr().unwrap().to_string(),
        search: search.local_addr().unwrap().to_string(),
        vector: None,
    };
    let cache = Arc::new(AvailabilityCache::open(config, dir.path().join("service.toml")).unwrap());
    let runtime = runtime();
    let addr = serve(&runtime, Arc::clone(&cache));

    for path in ["/ready", "/health"] {
        let reply = get(addr, path);
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert_eq!(reply.content_type, "application/health+json");
        assert_eq!(reply.body["status"], "pass");
        let kv = check(&reply.body, "key_value");
        assert_eq!(kv["componentId"], "key_value");
        assert_eq!(kv["componentType"], "datastore");
        assert_eq!(kv["status"], "pass");
        assert_eq!(kv["observedUnit"], "ms");
        assert!(kv["observedValue"].as_f64().unwrap() >= 0.0);
        assert!(kv["time"].as_str().unwrap().ends_with('Z'));
        assert!(kv.get("output").is_none(), "{kv}");
        let vector = check(&reply.body, "vector");
        assert_eq!(vector["status"], "pass");
        assert_eq!(vector["output"], "not configured");
    }

    // The key-value store dies: the next refresh answers, and /ready turns 503.
    drop(kv);
    cache.invalidate(ServiceKind::Kv);
    cache.refresh().unwrap();
    let reply = get(addr, "/ready");
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.content_type, "application/health+json");
    assert_eq!(reply.body["status"], "fail");
    let kv = check(&reply.body, "key_value");
    assert_eq!(kv["status"], "fail");
    assert!(
        kv["output"].as_str().unwrap().contains("cannot connect"),
        "{kv}"
    );
    assert_eq!(get(addr, "/health").status, 503);
    assert_eq!(check(&reply.body, "search")["status"], "pass");
}

#[test]
fn an_optional_section_down_is_warn_and_200() {
    let dir = tempfile::tempdir().unwrap();
    let kv = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = Service {
        kv: kv.local_addr().unwrap().to_string(),
        search: closed_addr(),
        vector: None,
    };
    let cache = Arc::new(AvailabilityCache::open(config, dir.path().join("service.toml")).unwrap());
    assert!(Service::is_optional(ServiceKind::Search));
    let health = cache.health();
    assert_eq!(health.status, HealthStatus::Warn);
    assert_eq!(health.http_status(), 200);

    let runtime = runtime();
    let addr = serve(&runtime, cache);
    let reply = get(addr, "/ready");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["status"], "warn");
    let search = check(&reply.body, "search");
    assert_eq!(search["status"], "warn");
    assert!(
        search["output"]
            .as_str()
            .unwrap()
            .contains("cannot connect")
    );
    assert_eq!(check(&reply.body, "key_value")["status"], "pass");
}

#[test]
fn a_required_section_down_at_start_is_503_with_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let search = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = Service {
        kv: closed_addr(),
        search: search.local_addr().unwrap().to_string(),
        vector: None,
    };
    let cache = Arc::new(AvailabilityCache::open(config, dir.path().join("service.toml")).unwrap());
    let runtime = runtime();
    let addr = serve(&runtime, Arc::clone(&cache));
    let reply = get(addr, "/ready");
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.body["status"], "fail");
    let kv = check(&reply.body, "key_value");
    assert_eq!(
        kv["output"],
        cache.status(ServiceKind::Kv).last_error.unwrap()
    );
}

#[test]
fn pending_sections_fail_until_the_next_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let kv = TcpListener::bind("127.0.0.1:0").unwrap();
    let search = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = Service {
        kv: kv.local_addr().unwrap().to_string(),
        search: search.local_addr().unwrap().to_string(),
        vector: None,
    };
    let cache = AvailabilityCache::open(config, dir.path().join("service.toml")).unwrap();
    cache.clear().unwrap();
    let health = cache.health();
    assert_eq!(health.status, HealthStatus::Fail);
    assert_eq!(health.http_status(), 503);
    let statuses: Vec<(&str, HealthStatus)> = health
        .checks
        .iter()
        .map(|c| (c.component_id, c.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("key_value", HealthStatus::Fail),
            ("search", HealthStatus::Warn),
            ("vector", HealthStatus::Pass),
        ]
    );
    cache.refresh().unwrap();
    assert_eq!(cache.health().status, HealthStatus::Pass);
}

#[test]
fn report_json_shape() {
    let dir = tempfile::tempdir().unwrap();
    let kv = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = Service {
        kv: kv.local_addr().unwrap().to_string(),
        search: closed_addr(),
        vector: None,
    };
    let cache = AvailabilityCache::open(config, dir.path().join("service.toml")).unwrap();
    let health = cache.health();
    assert_eq!(Health::CONTENT_TYPE, "application/health+json");
    let json: serde_json::Value = serde_json::from_str(&health.to_json()).unwrap();
    assert_eq!(json, serde_json::to_value(&health).unwrap());
    // In this order in the text (declaration order of the sections).
    let text = health.to_json();
    assert!(text.starts_with(r#"{"status":"warn","checks":{"key_value:availability":[{"componentId":"key_value","componentType":"datastore","status":"pass","time":""#), "{text}");
    assert!(text.find("search:availability") < text.find("vector:availability"));
    let mut keys: Vec<&String> = json["checks"].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "key_value:availability",
            "search:availability",
            "vector:availability"
        ]
    );
    let kv = check(&json, "key_value");
    let mut fields: Vec<&String> = kv.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "componentId",
            "componentType",
            "observedUnit",
            "observedValue",
            "status",
            "time"
        ]
    );

    // The status types serialize too: the kind enum as its section name.
    let statuses = serde_json::to_value(cache.statuses()).unwrap();
    assert_eq!(statuses[0][0], "key_value");
    assert_eq!(statuses[0][1]["source"], "validated");
    assert!(statuses[0][1]["duration_ms"].is_number());
    assert!(
        statuses[0][1]["checked_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(
        serde_json::to_value(cache.stats()).unwrap()["validations"],
        3 - 1 // `vector` is not configured: not validated
    );
    let report = serde_json::to_value(cache.refresh().unwrap()).unwrap();
    assert!(report["duration_ms"].is_number(), "{report}");
}
