//! Group commit: every ledger write of this node goes through one proposer
//! task, which gathers whatever leaves are waiting into one Raft command.
//!
//! While a command is being replicated and applied, new writes queue up;
//! the next command carries all of them. Under load one command holds many
//! leaves, so the per-command costs (a Raft entry, its replication and
//! signed peer messages, an fsync on each node, one apply transaction) are
//! shared, and throughput grows with the number of concurrent writers
//! instead of falling. With one writer a command holds one leaf, as before.
//!
//! The proposer stamps each command's leaves with one timestamp: now, to
//! the second, but never before the last applied leaf's. When faster
//! writers on another node moved the ledger's time past that stamp, the
//! whole command was rejected (leaves of one command share the stamp, so
//! either none or all of them regressed); the proposer stamps it anew and
//! proposes it again, a bounded number of times.
//!
//! Once a command is applied here, the proposer reads the inclusion proofs
//! of all its appended leaves in the tree right after it, in one query, and
//! hands each writer its own: the receipts of one command need one read of
//! the proof hashes, not one each.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use raft_store::{Command, MAX_COMMAND_BYTES, ProposedLeaf, RaftNode, StoreError};
use registry::checkpoint::TreeHead;
use registry::merkle::Hash;
use registry::{ApplyOutcome, Registry, Rejection};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::LedgerReceipt;

/// Builds one leaf, given the timestamp it is stamped with. Called again
/// with a later timestamp when the command is proposed again.
pub type MakeLeaf = Box<dyn Fn(&str) -> registry::Result<ProposedLeaf> + Send>;

/// Most leaves in one command: big enough that queued writers are taken
/// together, small enough that one apply transaction stays short.
const MAX_LEAVES: usize = 2000;

/// Writes waiting for the proposer; a full queue makes writers wait.
const QUEUE: usize = 4096;

/// Commands of this node on their way through Raft at once. One: while it
/// is written, replicated and applied, the next gathers every write that
/// arrives meanwhile. Two in flight made commands smaller and, on a
/// CPU-bound cluster, throughput lower (the per-command costs dominate).
const IN_FLIGHT: usize = 1;

/// How many times a command is stamped anew after its stamp fell behind the
/// ledger's time.
const MAX_ATTEMPTS: usize = 4;

/// The leaves of one submission as applied.
#[derive(Debug)]
pub struct Proposed {
    /// The timestamp the leaves were stamped with.
    pub at: String,
    /// One outcome per leaf, in order.
    pub outcomes: Vec<ApplyOutcome>,
    /// The leaf texts as proposed, in order.
    pub leaves: Vec<String>,
    /// The tree size once the whole command was applied, if it appended
    /// anything: every leaf of the command is in that tree, so receipts
    /// for it share one checkpoint.
    pub tree_size: Option<u64>,
    /// The inclusion proofs of the command's appended leaves in that tree,
    /// unless reading them failed (the caller then reads its own).
    pub proofs: Option<Arc<CommandProofs>>,
}

/// The inclusion proofs of a command's appended leaves in the tree right
/// after the command, read together once it was applied here.
#[derive(Debug)]
pub struct CommandProofs {
    /// That tree's size and root.
    pub head: TreeHead,
    proofs: HashMap<u64, Vec<Hash>>,
}

impl CommandProofs {
    /// Reads the proofs of leaves `indexes` in the tree of `tree_size` leaves.
    pub async fn read(registry: &Registry, indexes: &[u64], tree_size: u64) -> ApiResult<Self> {
        let (root, proofs) = registry.inclusion_proofs(indexes, tree_size).await?;
        Ok(Self {
            head: TreeHead {
                size: tree_size,
                root,
            },
            proofs: indexes.iter().copied().zip(proofs).collect(),
        })
    }

    /// The proof of leaf `index`, if it was appended by the command.
    pub fn proof(&self, index: u64) -> Option<&[Hash]> {
        self.proofs.get(&index).map(Vec::as_slice)
    }
}

/// One leaf as applied, with what [`Proposed`] says of its command.
#[derive(Debug)]
pub struct ProposedOne {
    /// The timestamp it was stamped with.
    pub at: String,
    /// What apply decided.
    pub outcome: ApplyOutcome,
    /// Its text as proposed.
    pub leaf: String,
    /// See [`Proposed::tree_size`].
    pub tree_size: Option<u64>,
    /// See [`Proposed::proofs`].
    pub proofs: Option<Arc<CommandProofs>>,
}

/// Why a submission has no outcome.
#[derive(Debug)]
pub enum Refused {
    /// The command may or may not have committed: look up what it would
    /// have made before proposing it again.
    Unknown(String),
    /// It did not commit.
    Failed(ApiError),
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Unknown(why) => ApiError::from(StoreError::OutcomeUnknown(why)),
            Refused::Failed(e) => e,
        }
    }
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::OutcomeUnknown(why) => Self::Unknown(why),
            other => Self::Failed(other.into()),
        }
    }
}

struct Submission {
    makers: Vec<MakeLeaf>,
    attempts: usize,
    reply: oneshot::Sender<Result<Proposed, Refused>>,
}

/// The handle writers submit leaves through. Cheap to clone.
#[derive(Clone)]
pub struct Proposer {
    queue: mpsc::Sender<Submission>,
}

impl std::fmt::Debug for Proposer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proposer").finish_non_exhaustive()
    }
}

impl Proposer {
    /// Starts the proposer task for `node`; it ends when every handle is
    /// dropped.
    pub fn start(node: RaftNode, registry: Registry) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(node, registry, rx));
        Self { queue }
    }

    /// Proposes the leaves `makers` build, together, in one command (with
    /// other writers' leaves), and waits until this node has applied it.
    pub async fn propose(&self, makers: Vec<MakeLeaf>) -> Result<Proposed, Refused> {
        let (reply, answer) = oneshot::channel();
        let submission = Submission {
            makers,
            attempts: 0,
            reply,
        };
        let stopped = || Refused::Failed(ApiError::Unavailable("the node is stopping".into()));
        self.queue.send(submission).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Proposes one leaf.
    pub async fn propose_one(&self, make: MakeLeaf) -> Result<ProposedOne, Refused> {
        let proposed = self.propose(vec![make]).await?;
        let mut outcomes = proposed.outcomes.into_iter().zip(proposed.leaves);
        match (outcomes.next(), outcomes.next()) {
            (Some((outcome, leaf)), None) => Ok(ProposedOne {
                at: proposed.at,
                outcome,
                leaf,
                tree_size: proposed.tree_size,
                proofs: proposed.proofs,
            }),
            _ => Err(Refused::Failed(ApiError::Internal(anyhow::anyhow!(
                "a one-leaf command was applied as another number of leaves"
            )))),
        }
    }
}

async fn run(node: RaftNode, registry: Registry, mut queue: mpsc::Receiver<Submission>) {
    let (retry_tx, mut retries) = mpsc::unbounded_channel::<Vec<Submission>>();
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut waiting: VecDeque<Submission> = VecDeque::new();
    let mut last_stamp: Option<OffsetDateTime> = None;
    loop {
        // A slot first: while every slot is taken, writes gather in the
        // queue and go together in the next command.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        while let Ok(again) = retries.try_recv() {
            for submission in again.into_iter().rev() {
                waiting.push_front(submission);
            }
        }
        if waiting.is_empty() {
            tokio::select! {
                submission = queue.recv() => match submission {
                    Some(submission) => waiting.push_back(submission),
                    None => return,
                },
                Some(again) = retries.recv() => waiting.extend(again),
            }
        }
        let mut queued: usize = waiting.iter().map(|s| s.makers.len()).sum();
        while queued < MAX_LEAVES {
            match queue.try_recv() {
                Ok(submission) => {
                    queued += submission.makers.len();
                    waiting.push_back(submission);
                }
                Err(_) => break,
            }
        }
        let at = match stamp_after(&registry, last_stamp).await {
            Ok(at) => at,
            Err(e) => {
                tracing::error!(error = %e, "Cannot stamp entries; failing the waiting writes.");
                for submission in waiting.drain(..) {
                    let _ = submission
                        .reply
                        .send(Err(Refused::Failed(ApiError::Internal(anyhow::anyhow!(
                            "stamping the entry: {e}"
                        )))));
                }
                continue;
            }
        };
        last_stamp = Some(at);
        let Ok(at) = at.format(&Rfc3339) else {
            continue;
        };
        let (taken, command) = gather(&mut waiting, &at);
        if taken.is_empty() {
            continue;
        }
        tracing::debug!(
            command.leaves = command.leaves.len(),
            command.writers = taken.len(),
            "Proposing."
        );
        let node = node.clone();
        let registry = registry.clone();
        let retry_tx = retry_tx.clone();
        tokio::spawn(async move {
            let again = commit(&node, &registry, slot, taken, command, &at).await;
            if !again.is_empty() {
                let _ = retry_tx.send(again);
            }
        });
    }
}

/// Proposes one command and answers its writers; returns the submissions
/// to stamp anew and propose again. The in-flight `slot` is given back as
/// soon as the command is applied, so the next command is on its way while
/// this one's proofs are read.
async fn commit(
    node: &RaftNode,
    registry: &Registry,
    slot: OwnedSemaphorePermit,
    taken: Vec<(Submission, Vec<String>)>,
    command: Command,
    at: &str,
) -> Vec<Submission> {
    let mut retry = Vec::new();
    let written = node.write(command).await;
    drop(slot);
    match written {
        Ok(written) => {
            let outcomes = written.outcomes;
            let regressed = outcomes.iter().any(|o| {
                matches!(
                    o,
                    ApplyOutcome::Rejected(Rejection::TimestampRegressed { .. })
                )
            });
            let appended = outcomes
                .iter()
                .any(|o| matches!(o, ApplyOutcome::Appended { .. }));
            // Nothing of it is in the ledger: stamp it anew, unless a
            // writer has waited through every attempt.
            let again = regressed && !appended;
            let tree_size = outcomes
                .iter()
                .filter_map(|o| match o {
                    ApplyOutcome::Appended { tree_size, .. } => Some(*tree_size),
                    _ => None,
                })
                .max();
            let proofs = match tree_size {
                Some(size) if !again => proofs_of(registry, &outcomes, size).await,
                _ => None,
            };
            let mut outcomes = outcomes.into_iter();
            for (mut submission, leaves) in taken {
                let mine: Vec<ApplyOutcome> = outcomes.by_ref().take(leaves.len()).collect();
                submission.attempts += 1;
                if again && submission.attempts < MAX_ATTEMPTS {
                    retry.push(submission);
                    continue;
                }
                let answer = if mine.len() == leaves.len() {
                    Ok(Proposed {
                        at: at.to_owned(),
                        outcomes: mine,
                        leaves,
                        tree_size,
                        proofs: proofs.clone(),
                    })
                } else {
                    Err(Refused::Failed(ApiError::Internal(anyhow::anyhow!(
                        "a command was applied as fewer leaves than it carried"
                    ))))
                };
                let _ = submission.reply.send(answer);
            }
        }
        Err(e) => {
            for (submission, _) in taken {
                let _ = submission.reply.send(Err(Refused::from(e.clone())));
            }
        }
    }
    retry
}

/// The inclusion proofs of the appended leaves among `outcomes` in the tree
/// of `tree_size` leaves; `None` (logged) when they cannot be read, and each
/// writer then reads its own.
async fn proofs_of(
    registry: &Registry,
    outcomes: &[ApplyOutcome],
    tree_size: u64,
) -> Option<Arc<CommandProofs>> {
    let appended: Vec<u64> = outcomes
        .iter()
        .filter_map(|o| match o {
            ApplyOutcome::Appended { index, .. } => Some(*index),
            _ => None,
        })
        .collect();
    match CommandProofs::read(registry, &appended, tree_size).await {
        Ok(proofs) => Some(Arc::new(proofs)),
        Err(e) => {
            tracing::warn!(error = %e, tree.size = tree_size, "Cannot read a command's inclusion proofs; each writer reads its own.");
            None
        }
    }
}

/// Takes waiting submissions, oldest first, into one command stamped `at`,
/// within the command bounds; returns them with their leaf texts. A
/// submission over the bounds on its own goes alone, and is refused.
fn gather(
    waiting: &mut VecDeque<Submission>,
    at: &str,
) -> (Vec<(Submission, Vec<String>)>, Command) {
    let mut taken = Vec::new();
    let mut leaves: Vec<ProposedLeaf> = Vec::new();
    let mut bytes = 0;
    while let Some(submission) = waiting.pop_front() {
        let made = submission
            .makers
            .iter()
            .map(|make| make(at))
            .collect::<registry::Result<Vec<_>>>();
        let made = match made {
            Ok(made) => made,
            Err(e) => {
                let _ = submission.reply.send(Err(Refused::Failed(e.into())));
                continue;
            }
        };
        let len: usize = made
            .iter()
            .map(|l| l.leaf.len() + l.prints.as_ref().map_or(0, String::len))
            .sum();
        if !taken.is_empty()
            && (bytes + len > MAX_COMMAND_BYTES || leaves.len() + made.len() > MAX_LEAVES)
        {
            waiting.push_front(submission);
            break;
        }
        bytes += len;
        let texts = made.iter().map(|l| l.leaf.clone()).collect();
        leaves.extend(made);
        taken.push((submission, texts));
    }
    (taken, Command { leaves })
}

/// A timestamp for new entries: now, to the second, but never before the
/// last leaf's, since the ledger's time does not go backwards.
pub(crate) async fn stamp(registry: &Registry) -> ApiResult<String> {
    stamp_after(registry, None)
        .await?
        .format(&Rfc3339)
        .map_err(|e| ApiError::Internal(e.into()))
}

/// [`stamp`], and never before `issued` either: a command stamped earlier
/// may still be on its way to the ledger.
async fn stamp_after(
    registry: &Registry,
    issued: Option<OffsetDateTime>,
) -> ApiResult<OffsetDateTime> {
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let latest = registry
        .latest_timestamp()
        .await?
        .and_then(|text| OffsetDateTime::parse(&text, &Rfc3339).ok());
    Ok([latest, issued]
        .into_iter()
        .flatten()
        .fold(now, OffsetDateTime::max))
}
/// Where a proposed leaf landed in the ledger.
pub(crate) struct Placed {
    /// Its leaf index.
    pub index: u64,
    /// The size of a tree that holds it: the one right after its command.
    pub tree_size: u64,
    /// Its leaf text, when this call proposed it.
    pub leaf: Option<String>,
    /// Its inclusion proof in that tree, when the proposer read it.
    pub proofs: Option<Arc<CommandProofs>>,
}

/// The proof material for the placed leaf; its proof and text are read
/// from the ledger unless the proposer handed them over.
pub(crate) async fn receipt(state: &AppState, placed: Placed) -> ApiResult<LedgerReceipt> {
    let Placed {
        index,
        tree_size,
        leaf,
        proofs,
    } = placed;
    let handed = proofs.as_deref().and_then(|p| {
        (p.head.size == tree_size)
            .then(|| p.proof(index).map(|proof| (p.head.root, proof.to_vec())))
            .flatten()
    });
    let (root, proof) = match handed {
        Some(handed) => handed,
        None => state.registry.inclusion_proof(index, tree_size).await?,
    };
    let leaf = match leaf {
        Some(leaf) => leaf,
        None => crate::evidence::stored_leaf(state, index).await?,
    };
    let checkpoint = state.signer()?.sign_checkpoint(&TreeHead {
        size: tree_size,
        root,
    })?;
    Ok(LedgerReceipt::new(
        index, tree_size, root, &proof, &leaf, checkpoint,
    ))
}
