//! Global options (`--endpoints`, timeouts, `-w`, `--hex`) and connecting.
//!
//! Errors read as etcdctl's: an endpoint that cannot be reached is
//! `context deadline exceeded` (etcdctl's gRPC dial never fails, its request
//! times out), a server error is etcd's message.

use std::time::Duration;

use cairn_net::client::{parse_endpoints, FailoverClient};
use cairn_net::{BlockingClient, ClientError, ClientOptions};

use super::exit::{Exit, ERROR};
use super::flags::{FlagSpec, Kind, Parsed};
use super::printer::Format;

pub const GLOBAL_FLAGS: &[FlagSpec] = &[
    FlagSpec::new(
        "endpoints",
        Kind::StrSlice,
        "[127.0.0.1:2379]",
        "gRPC endpoints",
    ),
    FlagSpec::new(
        "dial-timeout",
        Kind::Duration,
        "2s",
        "dial timeout for client connections",
    ),
    FlagSpec::new(
        "command-timeout",
        Kind::Duration,
        "5s",
        "timeout for short running command (excluding dial timeout)",
    ),
    FlagSpec::new(
        "write-out",
        Kind::Str,
        "simple",
        "set the output format (fields, json, simple, table)",
    )
    .short('w'),
    FlagSpec::new(
        "hex",
        Kind::Bool,
        "false",
        "print byte strings as hex encoded strings",
    ),
];

const DEADLINE: &str = "context deadline exceeded";

/// The global options of one invocation.
#[derive(Clone, Debug)]
pub struct Global {
    pub endpoints: Vec<String>,
    pub dial_timeout: Duration,
    pub command_timeout: Duration,
    pub format: Format,
    pub hex: bool,
}

impl Global {
    pub fn from_flags(p: &Parsed) -> Result<Global, Exit> {
        Ok(Global {
            endpoints: p
                .slice("endpoints")
                .unwrap_or_else(|| vec!["127.0.0.1:2379".into()]),
            dial_timeout: p.duration("dial-timeout", Duration::from_secs(2)),
            command_timeout: p.duration("command-timeout", Duration::from_secs(5)),
            format: Format::parse(&p.str("write-out", "simple"))?,
            hex: p.bool("hex"),
        })
    }

    fn options(&self) -> ClientOptions {
        ClientOptions {
            dial_timeout: self.dial_timeout,
            request_timeout: self.command_timeout,
            ..Default::default()
        }
    }

    /// A client on the first endpoint that accepts a connection; reads
    /// that fail move on to the next endpoint (`FailoverClient`'s policy).
    pub fn connect(&self) -> Result<FailoverClient, Exit> {
        self.connect_all()
            .map_err(|e| Exit::error(ERROR, error_text(&e)))
    }

    /// [`Self::connect`] with the client's error.
    pub fn connect_all(&self) -> Result<FailoverClient, ClientError> {
        let addrs = parse_endpoints(&self.endpoints.join(",")).map_err(|_| ClientError::Timeout)?;
        FailoverClient::connect(&addrs, self.options())
    }

    /// A client on the given endpoint(s).
    pub fn connect_to(&self, endpoints: &str) -> Result<BlockingClient, ClientError> {
        let addrs = parse_endpoints(endpoints).map_err(|_| ClientError::Timeout)?;
        BlockingClient::connect(&addrs, self.options())
    }
}

/// The text etcdctl shows for a failed request.
pub fn error_text(e: &ClientError) -> String {
    match e {
        ClientError::Server { message, .. } => message.clone(),
        // etcdctl's gRPC connection retries a broken or refused connection
        // until the deadline: all it ever reports is the deadline.
        ClientError::Timeout | ClientError::Connect { .. } | ClientError::Closed(_) => {
            DEADLINE.into()
        }
        other => other.to_string(),
    }
}

/// `ExitWithError(ExitError, err)` for a failed request.
pub fn request_failed(e: ClientError) -> Exit {
    Exit::error(ERROR, error_text(&e))
}
