//! A lease kept alive for the recipes (clientv3's `concurrency.Session`).

use std::net::SocketAddr;

use super::RecipeError;
use crate::client::LeaseKeeper;
use crate::BlockingClient;

/// A client and a lease kept alive from a background thread. Dropping it
/// stops the renewals (the lease then expires); [`Session::close`] revokes
/// the lease at once, releasing whatever it held.
pub struct Session {
    client: BlockingClient,
    lease: i64,
    ttl_secs: i64,
    keeper: LeaseKeeper,
}

impl Session {
    /// Grants a lease of `ttl_secs` through `client` and keeps it alive
    /// through `endpoints` (etcd's default session TTL is 60 s).
    pub fn new(
        client: BlockingClient,
        endpoints: &[SocketAddr],
        ttl_secs: i64,
    ) -> Result<Session, RecipeError> {
        let g = client.lease_grant(ttl_secs, 0)?;
        let keeper = LeaseKeeper::start(endpoints, client.options().clone(), g.id, g.ttl);
        Ok(Session {
            client,
            lease: g.id,
            ttl_secs: g.ttl,
            keeper,
        })
    }

    pub fn client(&self) -> &BlockingClient {
        &self.client
    }

    /// The session's lease id.
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// The TTL the lease was granted with.
    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// False once the lease is known gone.
    pub fn is_alive(&self) -> bool {
        self.keeper.is_alive()
    }

    /// Stops renewing and revokes the lease (deleting its keys).
    pub fn close(self) -> Result<(), RecipeError> {
        let Session {
            client,
            lease,
            keeper,
            ..
        } = self;
        drop(keeper);
        client.lease_revoke(lease)?;
        Ok(())
    }
}
