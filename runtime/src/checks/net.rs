//! The TCP check.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::show;
use crate::Outcome;

/// Checks that `addr` (`host:port`, such as `db.internal:5432`, `127.0.0.1:6379` or
/// `[::1]:6379`) accepts a TCP connection, all within `timeout`.
///
/// The timeout is one deadline for the name resolution and every connection attempt. The
/// resolution runs on a helper thread, so a hanging resolver cannot hold the check past the
/// deadline (the thread is left to finish on its own). Every resolved address is tried in
/// turn until one accepts; each attempt gets an equal share of the time left, so a first
/// address that drops packets cannot use up the time of the others. The connection is
/// closed at once: nothing is sent.
///
/// When no address accepts, the error lists each address with its error, or says which
/// step ran out of time.
///
/// A blocking call; from an `async` validator use
#[cfg_attr(feature = "tokio", doc = "[`tcp_connect_async`].")]
#[cfg_attr(not(feature = "tokio"), doc = "`tcp_connect_async` (feature `tokio`).")]
///
/// ```
/// use std::time::Duration;
/// use storage_availability::checks;
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap().to_string();
/// assert!(checks::tcp_connect(&addr, Duration::from_secs(1)).is_ok());
///
/// drop(listener); // nothing listens there any more
/// let outcome = checks::tcp_connect(&addr, Duration::from_secs(1));
/// assert!(outcome.last_error().unwrap().starts_with("cannot connect to"));
/// ```
pub fn tcp_connect(addr: &str, timeout: Duration) -> Outcome {
    let deadline = Instant::now() + timeout;
    let addrs = match resolve(addr, timeout) {
        Ok(addrs) => addrs,
        Err(error) => return Outcome::failed(error),
    };
    match connect_any(&addrs, deadline) {
        Ok(()) => Outcome::ok(),
        Err(errors) => Outcome::failed(connect_error(addr, timeout, addrs.len(), &errors)),
    }
}

/// Tries each address in turn until one accepts, each with an equal share of the time left
/// before `deadline`; the errors of those tried otherwise.
fn connect_any(addrs: &[SocketAddr], deadline: Instant) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    for (i, candidate) in addrs.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let share = left / u32::try_from(addrs.len() - i).unwrap_or(u32::MAX);
        match TcpStream::connect_timeout(candidate, share.max(Duration::from_millis(1))) {
            Ok(_stream) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                errors.push(format!("{candidate}: no answer within {}", show(share)));
            }
            Err(e) => errors.push(format!("{candidate}: {e}")),
        }
    }
    Err(errors)
}

/// [`tcp_connect`] for `async` validators, tokio-native: `tokio::net::lookup_host` and
/// `tokio::net::TcpStream::connect` under one `tokio::time::timeout` deadline, with the same
/// rules (every resolved address tried in turn, each with an equal share of the time left)
/// and the same errors.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use storage_availability::checks;
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let addr = listener.local_addr().unwrap().to_string();
/// assert!(checks::tcp_connect_async(&addr, Duration::from_secs(1)).await.is_ok());
/// # }
/// ```
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub fn tcp_connect_async(
    addr: &str,
    timeout: Duration,
) -> impl Future<Output = Outcome> + Send + 'static {
    let addr = addr.to_owned();
    async move {
        let deadline = tokio::time::Instant::now() + timeout;
        let addrs: Vec<SocketAddr> = match addr.parse::<SocketAddr>() {
            Ok(literal) => vec![literal],
            Err(_) => match tokio::time::timeout_at(deadline, tokio::net::lookup_host(&addr)).await
            {
                Ok(Ok(addrs)) => addrs.collect(),
                Ok(Err(e)) => return Outcome::failed(format!("cannot resolve {addr}: {e}")),
                Err(_) => {
                    return Outcome::failed(format!(
                        "cannot resolve {addr}: no answer within {}",
                        show(timeout)
                    ));
                }
            },
        };
        if addrs.is_empty() {
            return Outcome::failed(format!("cannot resolve {addr}: no address"));
        }
        let mut errors = Vec::new();
        for (i, candidate) in addrs.iter().enumerate() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let share = left / u32::try_from(addrs.len() - i).unwrap_or(u32::MAX);
            match tokio::time::timeout(share, tokio::net::TcpStream::connect(candidate)).await {
                Ok(Ok(_stream)) => return Outcome::ok(),
                Ok(Err(e)) => errors.push(format!("{candidate}: {e}")),
                Err(_) => errors.push(format!("{candidate}: no answer within {}", show(share))),
            }
        }
        Outcome::failed(connect_error(&addr, timeout, addrs.len(), &errors))
    }
}

/// Resolves `addr` within `timeout`: a literal address at once, a name on a helper thread.
fn resolve(addr: &str, timeout: Duration) -> Result<Vec<SocketAddr>, String> {
    if let Ok(literal) = addr.parse::<SocketAddr>() {
        return Ok(vec![literal]);
    }
    let (tx, rx) = mpsc::channel();
    let name = addr.to_owned();
    std::thread::Builder::new()
        .name("availability-resolve".into())
        .spawn(move || {
            let _ = tx.send(name.to_socket_addrs().map(Vec::from_iter));
        })
        .map_err(|e| format!("cannot resolve {addr}: cannot start a thread: {e}"))?;
    match rx.recv_timeout(timeout) {
        Ok(Ok(addrs)) if addrs.is_empty() => Err(format!("cannot resolve {addr}: no address")),
        Ok(Ok(addrs)) => Ok(addrs),
        Ok(Err(e)) => Err(format!("cannot resolve {addr}: {e}")),
        Err(_) => Err(format!(
            "cannot resolve {addr}: no answer within {}",
            show(timeout)
        )),
    }
}

fn connect_error(addr: &str, timeout: Duration, total: usize, errors: &[String]) -> String {
    let mut message = format!("cannot connect to {addr}: ");
    if errors.is_empty() {
        message.push_str(&format!("no time left within {}", show(timeout)));
    } else if let [only] = errors
        && total == 1
        && let Some(error) = only.strip_prefix(&format!("{addr}: "))
    {
        // A literal address: naming it twice says nothing more.
        message.push_str(error);
    } else {
        message.push_str(&errors.join("; "));
        if errors.len() < total {
            message.push_str(&format!(
                "; {} more address(es) not tried within {}",
                total - errors.len(),
                show(timeout)
            ));
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_address_fails_with_the_resolution_step() {
        let outcome = tcp_connect("no port here", Duration::from_secs(1));
        let error = outcome.last_error().unwrap();
        assert!(error.starts_with("cannot resolve no port here:"), "{error}");
    }

    #[test]
    fn a_zero_timeout_fails_without_panicking() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let outcome = tcp_connect(&addr, Duration::ZERO);
        let error = outcome.last_error().unwrap();
        assert!(error.contains("no time left within 0ms"), "{error}");
    }

    /// An address that never answers: a listener whose accept queue (backlog 0) is full,
    /// so Linux drops further SYNs and a connect attempt waits until its timeout. (tokio's
    /// `TcpSocket` sets the backlog; its `net` feature comes with the crate's `tokio`.)
    #[cfg(all(target_os = "linux", feature = "tokio"))]
    fn silent_listener() -> (std::net::TcpListener, Vec<std::net::TcpStream>, SocketAddr) {
        use std::io::ErrorKind;
        // tokio's TcpSocket is the safe way to choose a backlog; it needs a runtime to listen.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        let _entered = runtime.enter();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        let listener = socket.listen(0).unwrap().into_std().unwrap();
        let mut fillers = Vec::new();
        for _ in 0..8 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
                Ok(stream) => fillers.push(stream),
                Err(e) if e.kind() == ErrorKind::TimedOut => return (listener, fillers, addr),
                Err(e) => panic!("{e}"),
            }
        }
        panic!("the accept queue of {addr} never filled");
    }

    #[cfg(all(target_os = "linux", feature = "tokio"))]
    #[test]
    fn a_silent_first_address_leaves_time_for_the_next() {
        let (_silent, _fillers, silent) = silent_listener();
        let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addrs = [silent, open.local_addr().unwrap()];
        let started = Instant::now();
        let result = connect_any(&addrs, started + Duration::from_secs(2));
        assert_eq!(result, Ok(()));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[cfg(all(target_os = "linux", feature = "tokio"))]
    #[test]
    fn silent_addresses_fail_at_the_deadline_naming_each() {
        let (_silent, _fillers, silent) = silent_listener();
        let started = Instant::now();
        let errors =
            connect_any(&[silent, silent], started + Duration::from_millis(400)).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("no answer within"), "{errors:?}");
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(350), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    }

    #[test]
    fn a_refusing_first_address_is_followed_by_the_next() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_addr = closed.local_addr().unwrap();
        drop(closed);
        let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        assert_eq!(
            connect_any(&[closed_addr, open.local_addr().unwrap()], deadline),
            Ok(())
        );
        let errors = connect_any(&[closed_addr], deadline).unwrap_err();
        assert!(
            errors[0].starts_with(&closed_addr.to_string()),
            "{errors:?}"
        );
    }

    #[test]
    fn a_literal_address_is_named_once() {
        let message = connect_error(
            "127.0.0.1:1",
            Duration::from_secs(1),
            1,
            &["127.0.0.1:1: refused".into()],
        );
        assert_eq!(message, "cannot connect to 127.0.0.1:1: refused");
    }

    #[test]
    fn errors_name_every_address_tried_and_those_left() {
        let message = connect_error(
            "db:1",
            Duration::from_secs(2),
            3,
            &["10.0.0.1:1: refused".into()],
        );
        assert_eq!(
            message,
            "cannot connect to db:1: 10.0.0.1:1: refused; 2 more address(es) not tried within 2s"
        );
    }
}
