//! `endpoint health` and `endpoint status`: each endpoint is asked on its
//! own connection, in the order given. With `--cluster` the endpoints are
//! every member's client URLs from a member list (asked of `--endpoints`),
//! printed as the URLs they are, as etcdctl's `endpointsFromCluster`.
//!
//! Health is what etcd's is: a linearizable get of the key `health`; any
//! answer that is not an error means the endpoint serves requests.

use std::time::Instant;

use cairn_net::client::get_request;

use super::Ctx;
use crate::ctl::client::{error_text, Global};
use crate::ctl::exit::{Exit, ERROR};
use crate::ctl::flags::{FlagSpec, Kind, Parsed};
use crate::ctl::printer::{EndpointStatus, Health};

/// The `endpoint` group's flag, inherited by its subcommands.
pub const GROUP_FLAGS: &[FlagSpec] = &[FlagSpec::new(
    "cluster",
    Kind::Bool,
    "false",
    "use all endpoints from the cluster member list",
)];

/// The endpoints to ask: `--endpoints`, or with `--cluster` the client URLs
/// of every member (in member-list order; unstarted members have none).
fn endpoints(global: &Global, p: &Parsed) -> Result<Vec<String>, Exit> {
    if !p.bool("cluster") {
        return Ok(global.endpoints.clone());
    }
    let fetch_failed = |e| {
        Exit::error(
            ERROR,
            format!(
                "failed to fetch endpoints from etcd cluster member list: {}",
                error_text(&e)
            ),
        )
    };
    let list = global
        .connect_all()
        .and_then(|c| c.member_list(false))
        .map_err(fetch_failed)?;
    Ok(list
        .members
        .unwrap_or_default()
        .into_iter()
        .flat_map(|m| m.client_urls.unwrap_or_default())
        .collect())
}

fn probe(global: &Global, endpoint: &str) -> Health {
    let start = Instant::now();
    let result = global
        .connect_to(endpoint)
        .and_then(|c| c.range(get_request(b"health")));
    let took = start.elapsed();
    match result {
        Ok(_) => Health {
            endpoint: endpoint.to_string(),
            healthy: true,
            took,
            error: String::new(),
        },
        Err(e) => Health {
            endpoint: endpoint.to_string(),
            healthy: false,
            took,
            error: error_text(&e),
        },
    }
}

pub fn health(ctx: &mut Ctx, p: &Parsed) -> Result<(), Exit> {
    let endpoints = endpoints(&ctx.global, p)?;
    let results: Vec<Health> = std::thread::scope(|s| {
        let global = &ctx.global;
        let handles: Vec<_> = endpoints
            .iter()
            .map(|ep| s.spawn(move || probe(global, ep)))
            .collect();
        handles
            .into_iter()
            .zip(&endpoints)
            .map(|(h, ep)| h.join().unwrap_or_else(|_| panicked(ep)))
            .collect()
    });
    let out = ctx.printer().health(&results);
    ctx.emit(out);
    if results.iter().any(|h| !h.healthy) {
        return Err(Exit::error(ERROR, "unhealthy cluster"));
    }
    Ok(())
}

fn panicked(endpoint: &str) -> Health {
    Health {
        endpoint: endpoint.to_string(),
        healthy: false,
        took: Default::default(),
        error: "probe panicked".into(),
    }
}

pub fn status(ctx: &mut Ctx, p: &Parsed) -> Result<(), Exit> {
    let mut list = Vec::new();
    let mut failed = false;
    for ep in endpoints(&ctx.global, p)? {
        match ctx.global.connect_to(&ep).and_then(|c| c.status()) {
            Ok(status) => list.push(EndpointStatus {
                endpoint: ep,
                status,
            }),
            Err(e) => {
                failed = true;
                let _ = writeln!(
                    ctx.err,
                    "Failed to get the status of endpoint {ep} ({})",
                    error_text(&e)
                );
            }
        }
    }
    let out = ctx.printer().status(&list);
    ctx.emit(out);
    if failed {
        return Err(Exit::Code(ERROR));
    }
    Ok(())
}
