//! Awaits a batch of futures together. Polling them all in one pass is what
//! makes a queue depth: each `DmaFile::write_rc_at` queues its io_uring
//! entry on first poll, so all the batch's writes reach the kernel in the
//! same submission, and the batch ends when the last completes.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Resolves to every future's output, in the order given.
pub(crate) fn join_all<F>(futures: impl IntoIterator<Item = F>) -> JoinAll<F>
where
    F: Future,
    F::Output: Unpin,
{
    let pending: Vec<_> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let outputs = pending.iter().map(|_| None).collect();
    JoinAll { pending, outputs }
}

pub(crate) struct JoinAll<F: Future> {
    pending: Vec<Option<Pin<Box<F>>>>,
    outputs: Vec<Option<F::Output>>,
}

impl<F> Future for JoinAll<F>
where
    F: Future,
    F::Output: Unpin,
{
    type Output = Vec<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut all_done = true;
        for (slot, out) in this.pending.iter_mut().zip(this.outputs.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *out = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => all_done = false,
                }
            }
        }
        if !all_done {
            return Poll::Pending;
        }
        let outputs = this.outputs.iter_mut().map(|o| {
            o.take()
                .expect("invariant: a finished future left its output")
        });
        Poll::Ready(outputs.collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_come_back_in_the_order_given() {
        let futures = (0..5u32).map(|i| async move {
            // Finish in reverse order of creation.
            for _ in 0..(5 - i) {
                futures_lite::future::yield_now().await;
            }
            i
        });
        let out = futures_lite::future::block_on(join_all(futures));
        assert_eq!(out, vec![0, 1, 2, 3, 4]);
    }
}
