//! What an idle owner's task holds: its state and its wait on the mailbox,
//! not the command handlers' state machines (6,272 bytes in a test build
//! before they were boxed; 2,576 after). Sizes move with the compiler, hence
//! a bound rather than a figure.

use std::sync::Arc;

use ordermon_domain::ids::UserId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Command, Context, Owner};

/// The size of the future `run` returns, without making one.
fn future_size<F, Fut>(_: F) -> usize
where
    F: FnOnce(
        Arc<Context>,
        UserId,
        mpsc::Receiver<Command>,
        mpsc::WeakSender<Command>,
        CancellationToken,
    ) -> Fut,
{
    std::mem::size_of::<Fut>()
}

#[test]
fn an_idle_owners_task_stays_small() {
    let size = future_size(Owner::run);
    let owner = std::mem::size_of::<Owner>();
    assert!(
        size <= owner + 2048,
        "an owner's task is {size} bytes, its state {owner}"
    );
}
