//! `--listen-metrics-urls`: a small HTTP server (the `tiny_http` crate, on
//! threads of its own, never on an executor) that answers
//!
//! - `GET /metrics`: every metric in the Prometheus text format;
//! - `GET /health`: `{"health":"true"}` (200) when the member has a leader,
//!   no alarm is raised and a linearizable read of the key `health`
//!   succeeds within a second — etcd 3.4's checks — else
//!   `{"health":"false","reason":"..."}` (503).
//!
//! The health check goes through the member's own client port with the
//! client library, so it takes the path every client's read takes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use cairn_net::client::get_request;
use cairn_net::{BlockingClient, ClientOptions};
use cairn_schemas::rpc;

use super::Metrics;

/// How long the health check's reads may take (etcd: 1 s).
const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);

/// What the server answers from.
#[derive(Clone)]
pub struct Target {
    pub metrics: Arc<Metrics>,
    /// The member's client address to check health through.
    pub client_addr: SocketAddr,
}

/// A listener's unspecified address (0.0.0.0, ::) means "this host": the
/// health check dials loopback instead.
pub fn dialable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        let ip = match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        };
        SocketAddr::new(ip, addr.port())
    } else {
        addr
    }
}

/// Serves each bound listener on a thread of its own until the process
/// ends.
pub fn serve(listeners: Vec<TcpListener>, target: Target) -> std::io::Result<()> {
    for l in listeners {
        let addr = l.local_addr()?;
        let server = tiny_http::Server::from_listener(l, None)
            .map_err(|e| std::io::Error::other(format!("metrics server on {addr}: {e}")))?;
        let target = target.clone();
        std::thread::Builder::new()
            .name("cairn-metrics".into())
            .spawn(move || {
                for request in server.incoming_requests() {
                    respond(&target, request);
                }
            })?;
        tracing::info!(%addr, "serving /metrics and /health");
    }
    Ok(())
}

fn respond(target: &Target, request: tiny_http::Request) {
    let (status, content_type, body) = route(target, request.method(), request.url());
    let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes())
        .expect("invariant: static header is valid");
    let response = tiny_http::Response::from_string(body)
        .with_status_code(status)
        .with_header(header);
    // The client may be gone already; nothing to do about it.
    let _ = request.respond(response);
}

const TEXT: &str = "text/plain; charset=utf-8";

/// (status, content type, body) for a request.
fn route(target: &Target, method: &tiny_http::Method, url: &str) -> (u16, &'static str, String) {
    let path = url.split('?').next().unwrap_or(url);
    let known = matches!(path, "/metrics" | "/health");
    if !known {
        return (404, TEXT, "404 page not found\n".into());
    }
    if !matches!(method, tiny_http::Method::Get | tiny_http::Method::Head) {
        return (405, TEXT, "Method Not Allowed\n".into());
    }
    match path {
        "/metrics" => match target.metrics.render() {
            Ok(text) => (200, "text/plain; version=0.0.4; charset=utf-8", text),
            Err(e) => (500, TEXT, format!("cannot encode the metrics: {e}\n")),
        },
        _ => {
            let (healthy, body) = health_body(check_health(target));
            (if healthy { 200 } else { 503 }, "application/json", body)
        }
    }
}

/// etcd's body for a check's outcome.
fn health_body(outcome: Result<(), String>) -> (bool, String) {
    match outcome {
        Ok(()) => (true, "{\"health\":\"true\"}".into()),
        Err(reason) => (
            false,
            json_escape(&reason).map_or_else(
                || "{\"health\":\"false\"}".into(),
                |r| format!("{{\"health\":\"false\",\"reason\":\"{r}\"}}"),
            ),
        ),
    }
}

/// `s` as the inside of a JSON string (None if it holds control
/// characters, which reasons never do).
fn json_escape(s: &str) -> Option<String> {
    if s.chars().any(char::is_control) {
        return None;
    }
    Some(s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn check_health(target: &Target) -> Result<(), String> {
    if target.metrics.has_leader.get() == 0 {
        return Err("RAFT NO LEADER".into());
    }
    let opts = ClientOptions {
        dial_timeout: HEALTH_TIMEOUT,
        request_timeout: HEALTH_TIMEOUT,
        ..ClientOptions::default()
    };
    let client = BlockingClient::connect(&[target.client_addr], opts)
        .map_err(|e| format!("cannot reach the client port: {e}"))?;
    let alarms = client
        .alarm(rpc::AlarmRequestT::default())
        .map_err(|e| format!("alarm list failed: {e}"))?;
    if let Some(a) = alarms.alarms.as_ref().and_then(|a| a.first()) {
        let name = match a.alarm {
            rpc::AlarmType::NoSpace => "NOSPACE",
            rpc::AlarmType::Corrupt => "CORRUPT",
            _ => "UNKNOWN",
        };
        return Err(format!("ALARM {name}"));
    }
    client
        .range(get_request(b"health"))
        .map(|_| ())
        .map_err(|e| format!("QGET ERROR: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            metrics: Arc::new(Metrics::new()),
            // Nothing listens on port 9 of loopback in the test.
            client_addr: "127.0.0.1:9".parse().unwrap(),
        }
    }

    #[test]
    fn unknown_paths_and_methods_get_etcds_answers() {
        let t = target();
        assert_eq!(route(&t, &tiny_http::Method::Get, "/nothing").0, 404);
        assert_eq!(route(&t, &tiny_http::Method::Post, "/metrics").0, 405);
        let (status, kind, body) = route(&t, &tiny_http::Method::Get, "/metrics?x=1");
        assert_eq!(
            (status, kind),
            (200, "text/plain; version=0.0.4; charset=utf-8")
        );
        assert!(body.contains("# TYPE etcd_server_has_leader gauge"));
    }

    #[test]
    fn no_leader_is_unhealthy_before_any_request() {
        let t = target();
        let (status, _, body) = route(&t, &tiny_http::Method::Get, "/health");
        assert_eq!(status, 503);
        assert_eq!(body, r#"{"health":"false","reason":"RAFT NO LEADER"}"#);
    }

    #[test]
    fn an_unreachable_client_port_is_unhealthy_with_a_reason() {
        let t = target();
        t.metrics.has_leader.set(1);
        let (status, _, body) = route(&t, &tiny_http::Method::Get, "/health");
        assert_eq!(status, 503);
        assert!(
            body.starts_with(r#"{"health":"false","reason":"cannot reach"#),
            "{body}"
        );
    }

    #[test]
    fn health_bodies_are_json() {
        assert_eq!(
            health_body(Ok(())),
            (true, r#"{"health":"true"}"#.to_string())
        );
        let (_, b) = health_body(Err("say \"x\"".into()));
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["reason"], "say \"x\"");
    }

    #[test]
    fn unspecified_listen_addresses_are_dialed_on_loopback() {
        assert_eq!(
            dialable("0.0.0.0:2379".parse().unwrap()),
            "127.0.0.1:2379".parse().unwrap()
        );
        assert_eq!(
            dialable("10.0.0.1:2379".parse().unwrap()),
            "10.0.0.1:2379".parse().unwrap()
        );
    }
}
