//! Group commit on the leader: commands proposed here or forwarded by
//! followers while an entry is on its way are merged into the next entry.
//!
//! Every node gathers its own writers into one command at a time, so with
//! writers spread over three nodes the leader receives three commands per
//! round. Proposed apart, each is its own Raft entry: its own log fsync on
//! every node, its own replication messages (each signed and verified), its
//! own apply transaction (another fsync) on every node. Merged, a round
//! costs one of each, and the leaves of the whole cluster share them.
//!
//! A merged entry holds the commands' leaves unchanged, each command's
//! together, ordered by their timestamps (oldest first, arrival order among
//! equals): the leaf bytes are still the proposers', and since a command's
//! leaves share one stamp, a command is no more likely to fall behind the
//! ledger's time merged than alone. Each command's proposer gets the
//! outcomes of its own leaves, and the log index of the merged entry.
//!
//! Proposers on different nodes finish their rounds at different moments,
//! so the next entry waits briefly (2 ms) for the commands of the proposers
//! that shared the last one.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use openraft::Raft;
use time::OffsetDateTime;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::node::{MAX_COMMAND_BYTES, WriteRefused, WriteReply, stamp_of};
use crate::state_machine::StateMachine;
use crate::types::{Command, TypeConfig};

/// Most leaves in one merged entry: three nodes' full commands, so that
/// one apply transaction stays short.
const MAX_LEAVES: usize = 6000;

/// Merged entries on their way through Raft at once. One: while it is
/// replicated and applied, the next gathers every command that arrives.
const IN_FLIGHT: usize = 1;

/// How long the next entry waits for the commands of proposers that
/// shared the last one, as a database's commit delay waits for sibling
/// transactions: a fraction of the entry's own round.
const SIBLING_WAIT: Duration = Duration::from_millis(2);

/// How long an entry holds the in-flight slot. An entry commits in
/// milliseconds; one that takes longer waits on something else (a lost
/// quorum, a leader change), and the commands behind it should get Raft's
/// own answer (a lease expired, another leader) instead of waiting too.
const MAX_HOLD: Duration = Duration::from_secs(1);

/// Commands waiting for the merger; a full queue makes proposers wait.
const QUEUE: usize = 1024;

/// What a proposer waits for.
pub(crate) type Reply = Result<WriteReply, WriteRefused>;

struct Submission {
    command: Command,
    reply: oneshot::Sender<Reply>,
}

/// The handle proposers hand their commands to.
#[derive(Clone)]
pub(crate) struct Merger {
    queue: mpsc::Sender<Submission>,
}

impl Merger {
    /// Starts the merging task for `raft`; it ends when every handle is
    /// dropped.
    pub(crate) fn start(raft: Raft<TypeConfig, StateMachine>) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(raft, rx));
        Self { queue }
    }

    /// Proposes `command` in the next merged entry and waits for its
    /// leaves' outcomes.
    pub(crate) async fn propose(&self, command: Command) -> Reply {
        let (reply, answer) = oneshot::channel();
        let stopped = || WriteRefused::Stopped("the leader's proposer has stopped".into());
        if self
            .queue
            .send(Submission { command, reply })
            .await
            .is_err()
        {
            return Err(stopped());
        }
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }
}

async fn run(raft: Raft<TypeConfig, StateMachine>, mut queue: mpsc::Receiver<Submission>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut waiting: VecDeque<Submission> = VecDeque::new();
    // Commands in the last entry.
    let mut expected = 1;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        if waiting.is_empty() {
            match queue.recv().await {
                Some(submission) => waiting.push_back(submission),
                None => return,
            }
        }
        while let Ok(submission) = queue.try_recv() {
            waiting.push_back(submission);
        }
        // The proposers whose commands shared the last entry are likely
        // still writing; their commands, a moment behind, join this entry
        // rather than each costing one of their own. When fewer come, the
        // wait is short and the next entry expects fewer.
        if waiting.len() < expected {
            let until = tokio::time::Instant::now() + SIBLING_WAIT;
            while waiting.len() < expected {
                match tokio::time::timeout_at(until, queue.recv()).await {
                    Ok(Some(submission)) => waiting.push_back(submission),
                    Ok(None) | Err(_) => break,
                }
            }
        }
        let taken = take(&mut waiting);
        expected = taken.len();
        let raft = raft.clone();
        tokio::spawn(async move {
            let proposing = propose(&raft, taken);
            tokio::pin!(proposing);
            let held = tokio::time::timeout(MAX_HOLD, &mut proposing).await;
            drop(slot);
            if held.is_err() {
                proposing.await;
            }
        });
    }
}

/// Takes waiting commands, oldest first, as many as fit one entry. The
/// first always goes, so a command the node accepted alone is never
/// stranded.
fn take(waiting: &mut VecDeque<Submission>) -> Vec<Submission> {
    let mut taken: Vec<Submission> = Vec::new();
    let (mut bytes, mut leaves) = (0, 0);
    while let Some(next) = waiting.front() {
        let (len, count) = (next.command.payload_len(), next.command.leaves.len());
        if !taken.is_empty() && (bytes + len > MAX_COMMAND_BYTES || leaves + count > MAX_LEAVES) {
            break;
        }
        bytes += len;
        leaves += count;
        taken.extend(waiting.pop_front());
    }
    taken
}

/// Proposes the commands of `taken` as one entry and answers each with its
/// own leaves' outcomes.
async fn propose(raft: &Raft<TypeConfig, StateMachine>, mut taken: Vec<Submission>) {
    let merged = merge(&mut taken);
    let total = merged.leaves.len();
    if taken.len() > 1 {
        tracing::debug!(
            raft.commands = taken.len(),
            raft.leaves = total,
            "Merged commands into one entry."
        );
    }
    let result = raft.client_write(merged).await;
    match result {
        Ok(response) if response.data.len() == total => {
            let mut outcomes = response.data.into_iter();
            for submission in taken {
                let mine = outcomes
                    .by_ref()
                    .take(submission.command.leaves.len())
                    .collect();
                let _ = submission.reply.send(Ok(WriteReply {
                    log_index: response.log_id.index,
                    outcomes: mine,
                }));
            }
        }
        Ok(response) => {
            let detail = format!(
                "an entry of {total} leaves was applied as {}",
                response.data.len()
            );
            tracing::error!(raft.index = response.log_id.index, %detail, "A merged entry's outcomes do not match its leaves.");
            for submission in taken {
                let _ = submission
                    .reply
                    .send(Err(WriteRefused::Stopped(detail.clone())));
            }
        }
        Err(e) => {
            let refused = WriteRefused::from(e);
            for submission in taken {
                let _ = submission.reply.send(Err(refused.clone()));
            }
        }
    }
}

/// Orders `taken` oldest stamp first and concatenates their leaves.
fn merge(taken: &mut [Submission]) -> Command {
    // Stable: commands stamped alike keep their arrival order.
    taken.sort_by_cached_key(|s| stamp(&s.command));
    Command {
        leaves: taken
            .iter()
            .flat_map(|s| s.command.leaves.iter().cloned())
            .collect(),
    }
}

/// The timestamp a command's leaves are stamped with (its first leaf's);
/// `None`, which sorts first, when it cannot be read, and apply then
/// rejects the leaf on its own.
fn stamp(command: &Command) -> Option<OffsetDateTime> {
    stamp_of(command.leaves.first()?).map(|(_, at)| at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ProposedLeaf;

    fn submission(leaves: usize, bytes: usize) -> (Submission, oneshot::Receiver<Reply>) {
        let (reply, rx) = oneshot::channel();
        let leaf = ProposedLeaf {
            leaf: "x".repeat(bytes),
            prints: None,
            token_sha256: None,
        };
        let command = Command {
            leaves: vec![leaf; leaves],
        };
        (Submission { command, reply }, rx)
    }

    #[test]
    fn take_stays_within_the_entry_bounds() {
        let mut waiting = VecDeque::new();
        let mut replies = Vec::new();
        for _ in 0..4 {
            let (s, rx) = submission(2000, 10);
            waiting.push_back(s);
            replies.push(rx);
        }
        assert_eq!(take(&mut waiting).len(), 3);
        assert_eq!(waiting.len(), 1);

        let half = MAX_COMMAND_BYTES / 2 + 1;
        let (a, _ra) = submission(1, half);
        let (b, _rb) = submission(1, half);
        let mut waiting = VecDeque::from([a, b]);
        assert_eq!(take(&mut waiting).len(), 1, "two halves over the bound");
        assert_eq!(take(&mut waiting).len(), 1);
        assert!(waiting.is_empty());
    }

    #[test]
    fn merged_commands_go_oldest_stamp_first() {
        let stamps = [
            "2026-12-04T10:00:01Z",
            "2026-12-04T10:00:00Z",
            "2026-12-04T10:00:01Z",
            "2026-12-04T10:00:00Z",
        ];
        let mut taken: Vec<Submission> = stamps
            .iter()
            .zip(0..)
            .map(|(at, n)| Submission {
                command: crate::node::tests::command(at, n),
                reply: oneshot::channel().0,
            })
            .collect();
        let leaves = |ns: [u64; 4]| -> Vec<String> {
            ns.iter()
                .map(|&n| {
                    crate::node::tests::command(stamps[n as usize], n).leaves[0]
                        .leaf
                        .clone()
                })
                .collect()
        };
        let merged = merge(&mut taken);
        let got: Vec<String> = merged.leaves.into_iter().map(|l| l.leaf).collect();
        assert_eq!(got, leaves([1, 3, 0, 2]));
    }

    #[test]
    fn an_oversized_command_still_goes_alone() {
        let (big, _rx) = submission(MAX_LEAVES + 1, 1);
        let mut waiting = VecDeque::from([big]);
        assert_eq!(take(&mut waiting).len(), 1);
    }
}
