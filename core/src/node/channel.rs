//! Channels between the node's tasks. With two or more executors the WAL
//! writer runs on its own executor and glommio's shared (cross-executor)
//! channels connect it; on one executor local channels do. These wrappers
//! hide which.

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::channels::shared_channel::{
    self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender,
};

/// A bounded channel between two executors: the ends move to their
/// executors and are connected there.
pub fn shared<T: Send + Sized>(capacity: usize) -> (SharedSender<T>, SharedReceiver<T>) {
    shared_channel::new_bounded(capacity)
}

/// A bounded channel within one executor.
pub fn local<T: Send>(capacity: usize) -> (Tx<T>, Rx<T>) {
    let (tx, rx) = local_channel::new_bounded(capacity);
    (Tx::Local(tx), Rx::Local(rx))
}

pub enum Tx<T: Send> {
    Shared(ConnectedSender<T>),
    Local(LocalSender<T>),
}

pub enum Rx<T: Send> {
    Shared(ConnectedReceiver<T>),
    Local(LocalReceiver<T>),
}

impl<T: Send + 'static> Tx<T> {
    /// Connects the sending end of a shared channel on this executor.
    pub async fn connect(s: SharedSender<T>) -> Tx<T> {
        Tx::Shared(s.connect().await)
    }
}

impl<T: Send + 'static> Rx<T> {
    /// Connects the receiving end of a shared channel on this executor.
    pub async fn connect(r: SharedReceiver<T>) -> Rx<T> {
        Rx::Shared(r.connect().await)
    }
}

impl<T: Send> Tx<T> {
    /// Sends, waiting while the channel is full. Err when the receiver is gone.
    pub async fn send(&self, item: T) -> Result<(), ()> {
        match self {
            Tx::Shared(s) => s.send(item).await.map_err(|_| ()),
            Tx::Local(l) => l.send(item).await.map_err(|_| ()),
        }
    }
}

impl<T: Send> Rx<T> {
    /// Waits for the next item; None once every sender is gone.
    pub async fn recv(&self) -> Option<T> {
        match self {
            Rx::Shared(s) => s.recv().await,
            Rx::Local(l) => l.recv().await,
        }
    }
}
