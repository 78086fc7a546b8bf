//! Endpoint strings as etcdctl takes them: `host:port` or `http://host:port`.

use std::net::{SocketAddr, ToSocketAddrs};

use crate::error::ClientError;

/// Parses one endpoint; `http://` and `https://` prefixes are accepted.
pub fn parse_endpoint(s: &str) -> Result<SocketAddr, ClientError> {
    let hostport = s
        .trim()
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    let bad = |why: String| ClientError::InvalidRequest(format!("invalid endpoint {s:?}: {why}"));
    let mut addrs = hostport.to_socket_addrs().map_err(|e| bad(e.to_string()))?;
    addrs.next().ok_or_else(|| bad("no address".into()))
}

/// Parses a comma-separated endpoint list.
pub fn parse_endpoints(s: &str) -> Result<Vec<SocketAddr>, ClientError> {
    let list: Result<Vec<_>, _> = s
        .split(',')
        .filter(|e| !e.trim().is_empty())
        .map(parse_endpoint)
        .collect();
    let list = list?;
    if list.is_empty() {
        return Err(ClientError::InvalidRequest("no endpoints given".into()));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_url_and_host_port() {
        assert_eq!(
            parse_endpoint("http://127.0.0.1:2379").unwrap().port(),
            2379
        );
        assert_eq!(parse_endpoint("127.0.0.1:12").unwrap().port(), 12);
        assert_eq!(
            parse_endpoints("127.0.0.1:1,http://127.0.0.1:2")
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_endpoint("nonsense").is_err());
        assert!(parse_endpoints("").is_err());
    }
}
