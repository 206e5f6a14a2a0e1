//! The HTTP check (feature `http`), on `ureq`.

use std::sync::OnceLock;
use std::time::Duration;

use ureq::http::{StatusCode, Uri};

use super::show;
use crate::Outcome;

/// Checks that a `GET` of `url` answers with a 2xx status within `timeout`.
///
/// `http://` and `https://` URLs (TLS through rustls, with the Mozilla root certificates of
/// `webpki-roots`); redirects are followed (up to 10) and count against the timeout, which
/// is one deadline for the name resolution, the connection, the TLS handshake and the
/// response head. The body is not read. Proxies named by `HTTP_PROXY`/`HTTPS_PROXY`/
/// `NO_PROXY` are used, as by most HTTP clients.
///
/// Any other status fails with the status and its reason (`… answered 503 Service
/// Unavailable`), and an error on the way fails with what went wrong. Messages show the URL
/// without its user info and query (which may hold credentials); a URL that does not parse
/// is not echoed.
///
/// A blocking call; from an `async` validator use
#[cfg_attr(feature = "tokio", doc = "[`http_ok_async`].")]
#[cfg_attr(not(feature = "tokio"), doc = "`http_ok_async` (feature `tokio`).")]
///
/// ```no_run
/// use std::time::Duration;
/// use storage_availability::{Outcome, checks};
///
/// struct SearchConfig {
///     health_url: String,
/// }
///
/// fn check_search(cfg: &SearchConfig) -> Outcome {
///     checks::http_ok(&cfg.health_url, Duration::from_secs(2))
/// }
/// # let _ = check_search(&SearchConfig { health_url: "http://127.0.0.1:9200/_cluster/health".into() });
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub fn http_ok(url: &str, timeout: Duration) -> Outcome {
    let uri = match url.parse::<Uri>() {
        Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {
            uri
        }
        _ => {
            return Outcome::failed(
                "not an http:// or https:// URL (not shown: it may hold credentials)",
            );
        }
    };
    let shown = redacted(&uri);
    if timeout.is_zero() {
        return Outcome::failed(format!("GET {shown}: no time left within 0ms"));
    }
    let response = agent()
        .get(uri)
        .config()
        .timeout_global(Some(timeout))
        .build()
        .call();
    match response {
        Ok(response) if response.status().is_success() => Outcome::ok(),
        Ok(response) => Outcome::failed(format!(
            "GET {shown} answered {}",
            status_text(response.status())
        )),
        Err(ureq::Error::Timeout(_)) => {
            Outcome::failed(format!("GET {shown}: no answer within {}", show(timeout)))
        }
        Err(ureq::Error::BadUri(_)) => Outcome::failed(format!("GET {shown}: a bad URL")),
        Err(error) => Outcome::failed(format!("GET {shown}: {error}")),
    }
}

/// [`http_ok`] for `async` validators: the same request on tokio's blocking thread pool
/// (`spawn_blocking`), bounded by `tokio::time::timeout` as well as by the client's own
/// deadline, with the same rules and errors.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use storage_availability::checks;
///
/// let outcome = checks::http_ok_async("http://127.0.0.1:8080/health", Duration::from_secs(2)).await;
/// println!("{:?}", outcome.last_error());
/// # }
/// ```
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(all(feature = "http", feature = "tokio"))))]
pub fn http_ok_async(
    url: &str,
    timeout: Duration,
) -> impl Future<Output = Outcome> + Send + 'static {
    let url = url.to_owned();
    async move {
        // The client stops at `timeout`; the outer bound only guards against a stuck thread.
        let outer = timeout.saturating_add(Duration::from_millis(250));
        let shown = url
            .parse::<Uri>()
            .map(|uri| redacted(&uri))
            .unwrap_or_else(|_| "the URL".to_owned());
        let check = super::on_blocking_thread("HTTP", move || http_ok(&url, timeout));
        match tokio::time::timeout(outer, check).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::failed(format!("GET {shown}: no answer within {}", show(timeout))),
        }
    }
}

/// One client for every check: connections and the TLS configuration are shared.
fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("storage-availability/", env!("CARGO_PKG_VERSION")))
            .build()
            .into()
    })
}

/// `scheme://host[:port]/path`: no user info, no query.
fn redacted(uri: &Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = uri.host().unwrap_or("");
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    format!("{scheme}://{host}{port}{}", uri.path())
}

fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_queries_never_appear_in_messages() {
        let uri: Uri = "https://user:secret@example.invalid:8443/health?token=secret"
            .parse()
            .unwrap();
        assert_eq!(redacted(&uri), "https://example.invalid:8443/health");
    }

    #[test]
    fn urls_that_do_not_parse_are_not_echoed() {
        for url in [
            "not a url with secret",
            "ftp://secret@host/",
            "/relative/secret",
        ] {
            let outcome = http_ok(url, Duration::from_secs(1));
            let error = outcome.last_error().unwrap();
            assert!(!error.contains("secret"), "{error}");
            assert!(error.contains("not an http:// or https:// URL"), "{error}");
        }
    }

    #[test]
    fn statuses_read_with_their_reason() {
        assert_eq!(
            status_text(StatusCode::SERVICE_UNAVAILABLE),
            "503 Service Unavailable"
        );
        assert_eq!(status_text(StatusCode::from_u16(599).unwrap()), "599");
    }
}
