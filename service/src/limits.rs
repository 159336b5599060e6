//! What one client may take from the node: upload and decode slots, decode
//! memory, spool disk and request rate. Unauthenticated requests draw on
//! smaller pools than operators', so a stranger can never take the slots
//! operators register with. Every refusal is immediate or after a bounded
//! wait, and says when to retry.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::LimitArgs;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Who is asking, for the pools they draw on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The node's operator (a valid token).
    Operator,
    /// Anyone else.
    Public,
}

/// The node's pools, shared by every request.
pub struct Gates {
    args: LimitArgs,
    uploads: Pool,
    public_uploads: Pool,
    decodes: Pool,
    public_decodes: Pool,
    /// One permit per MiB of the decode budget.
    decode_memory: Arc<Semaphore>,
    decoding: AtomicUsize,
    spool: Arc<SpoolBudget>,
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_token: Option<DefaultKeyedRateLimiter<[u8; 32]>>,
}

struct Pool {
    slots: Arc<Semaphore>,
    what: &'static str,
}

impl Pool {
    fn new(size: usize, what: &'static str) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(size)),
            what,
        }
    }

    async fn take(&self, wait: Duration) -> ApiResult<OwnedSemaphorePermit> {
        match tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(ApiError::Busy {
                detail: format!("all {} are taken; retry later", self.what),
                retry_after: 1,
            }),
        }
    }
}

/// What a decode holds while it runs: its slot and its share of the
/// decode memory budget, both given back when dropped.
pub struct DecodePermit {
    _slot: OwnedSemaphorePermit,
    _memory: OwnedSemaphorePermit,
    gates: Arc<Gates>,
}

impl Drop for DecodePermit {
    fn drop(&mut self) {
        self.gates.decoding.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the node is doing now, for `GET /v1/health`.
#[derive(Debug, Serialize)]
pub struct Load {
    /// Uploads being received.
    pub uploads: usize,
    /// Files being decoded.
    pub decodes: usize,
    /// MiB of the decode budget in use.
    pub decode_mib: u64,
    /// Bytes of spooled uploads on disk.
    pub spool_bytes: u64,
}

impl Gates {
    /// The pools sized as configured.
    pub fn new(args: &LimitArgs, spool_dir: PathBuf) -> Self {
        let quota = |per_second: u32| {
            let rate = NonZeroU32::new(per_second)?;
            let burst = NonZeroU32::new(per_second.saturating_mul(args.rate_burst_seconds))?;
            Some(Quota::per_second(rate).allow_burst(burst))
        };
        Self {
            args: args.clone(),
            uploads: Pool::new(args.max_uploads, "upload slots"),
            public_uploads: Pool::new(
                args.max_public_uploads,
                "upload slots for unauthenticated requests",
            ),
            decodes: Pool::new(args.max_decodes, "decode slots"),
            public_decodes: Pool::new(
                args.max_public_decodes,
                "decode slots for unauthenticated requests",
            ),
            decode_memory: Arc::new(Semaphore::new(args.decode_budget_mib as usize)),
            decoding: AtomicUsize::new(0),
            spool: Arc::new(SpoolBudget {
                dir: spool_dir,
                used: AtomicU64::new(0),
                budget: args.spool_budget_mib.saturating_mul(1 << 20),
                min_free: args.min_free_disk_mib.saturating_mul(1 << 20),
            }),
            per_address: quota(args.rate_per_address).map(RateLimiter::keyed),
            per_token: quota(args.rate_per_token).map(RateLimiter::keyed),
        }
    }

    /// The largest upload `caller` may send.
    pub fn max_upload_bytes(&self, caller: Caller) -> u64 {
        match caller {
            Caller::Operator => self.args.max_upload_bytes,
            Caller::Public => self.args.max_public_upload_bytes,
        }
    }

    /// The largest JSON request body.
    pub fn max_json_bytes(&self) -> u64 {
        self.args.max_json_bytes as u64
    }

    /// Multipart framing bounds for an upload of `caller`.
    pub fn multipart(&self, caller: Caller) -> crate::multipart::MultipartLimits {
        crate::multipart::MultipartLimits {
            max_preamble_bytes: self.args.max_multipart_preamble_bytes,
            max_part_header_bytes: self.args.max_part_header_bytes,
            max_parts: self.args.max_parts,
            // The file, plus the metadata part and the framing.
            max_body_bytes: self.max_upload_bytes(caller) + 1024 * 1024,
        }
    }

    /// The spool's disk budget.
    pub fn spool(&self) -> Arc<SpoolBudget> {
        self.spool.clone()
    }

    /// A slot to receive an upload in, waiting at most the queue timeout.
    pub async fn upload(&self, caller: Caller) -> ApiResult<OwnedSemaphorePermit> {
        let pool = match caller {
            Caller::Operator => &self.uploads,
            Caller::Public => &self.public_uploads,
        };
        pool.take(self.queue_timeout()).await
    }

    /// A slot and `bytes` of the decode budget, waiting at most the queue
    /// timeout. A decode estimated above the whole budget is refused.
    pub async fn decode(self: &Arc<Self>, caller: Caller, bytes: u64) -> ApiResult<DecodePermit> {
        let mib = bytes.div_ceil(1 << 20).max(1);
        if mib > self.args.decode_budget_mib {
            return Err(ApiError::Unprocessable(format!(
                "decoding this file would take about {mib} MiB, more than this node's decode budget of {} MiB",
                self.args.decode_budget_mib
            )));
        }
        let pool = match caller {
            Caller::Operator => &self.decodes,
            Caller::Public => &self.public_decodes,
        };
        let wait = self.queue_timeout();
        let deadline = tokio::time::Instant::now() + wait;
        let slot = pool.take(wait).await?;
        let memory = tokio::time::timeout_at(
            deadline,
            // `mib` is at most the budget, which fits in u32 (checked at start).
            self.decode_memory.clone().acquire_many_owned(mib as u32),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| ApiError::Busy {
            detail: "the node's decode memory budget is taken by other files; retry later".into(),
            retry_after: 2,
        })?;
        self.decoding.fetch_add(1, Ordering::Relaxed);
        Ok(DecodePermit {
            _slot: slot,
            _memory: memory,
            gates: self.clone(),
        })
    }

    /// How long one decode of `caller` may run.
    pub fn decode_time(&self, caller: Caller) -> Duration {
        Duration::from_secs(match caller {
            Caller::Operator => self.args.max_decode_seconds,
            Caller::Public => self.args.max_public_decode_seconds,
        })
    }

    fn queue_timeout(&self) -> Duration {
        Duration::from_secs(self.args.queue_timeout)
    }

    /// What is in use now.
    pub fn load(&self) -> Load {
        let in_use = |pool: &Pool, size: usize| size - pool.slots.available_permits();
        Load {
            uploads: in_use(&self.uploads, self.args.max_uploads)
                + in_use(&self.public_uploads, self.args.max_public_uploads),
            decodes: self.decoding.load(Ordering::Relaxed),
            decode_mib: self.args.decode_budget_mib - self.decode_memory.available_permits() as u64,
            spool_bytes: self.spool.used.load(Ordering::Relaxed),
        }
    }

    /// Forgets clients not seen for a while, so the rate limiters' memory
    /// follows the number of recent clients, not of all clients ever.
    pub fn forget_idle_clients(&self) {
        if let Some(limiter) = &self.per_address {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.per_token {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Whether a request from `address`, with a token of `digest` if it is
    /// valid, is within its rate; otherwise the seconds until it would be.
    fn check_rate(&self, address: Option<IpAddr>, digest: Option<[u8; 32]>) -> Result<(), u64> {
        let verdict = match (digest, address) {
            (Some(digest), _) => self.per_token.as_ref().map(|l| l.check_key(&digest)),
            (None, Some(address)) => self
                .per_address
                .as_ref()
                .map(|l| l.check_key(&client_key(address))),
            (None, None) => None,
        };
        match verdict {
            Some(Err(not_until)) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(wait.as_secs_f64().ceil().max(1.0) as u64)
            }
            _ => Ok(()),
        }
    }
}

/// The key a client address is counted under: IPv6 clients usually hold a
/// whole /64, so it counts as one address.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let segments = v6.segments();
                IpAddr::V6(Ipv6Addr::new(
                    segments[0],
                    segments[1],
                    segments[2],
                    segments[3],
                    0,
                    0,
                    0,
                    0,
                ))
            }
        },
    }
}

/// Middleware: answers 429 with `Retry-After` to a client over its rate.
/// The operator's token and parties' tokens this node knows are limited per
/// token, anything else per address.
pub async fn limit_rate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let address = crate::connections::client_addr(&request).map(|a| a.ip());
    let digest = crate::auth::known_digest(request.headers(), &state);
    match state.gates.check_rate(address, digest) {
        Ok(()) => next.run(request).await,
        Err(retry_after) => ApiError::RateLimited { retry_after }.into_response(),
    }
}

/// The node's disk budget for spooled uploads.
pub struct SpoolBudget {
    dir: PathBuf,
    used: AtomicU64,
    budget: u64,
    min_free: u64,
}

/// Spool space held by one upload, given back when dropped.
pub struct SpoolLease {
    budget: Arc<SpoolBudget>,
    held: u64,
}

/// Space is reserved in steps of this much, so the budget's counter and
/// the free-space check are touched once per step, not once per chunk.
const SPOOL_STEP: u64 = 8 * 1024 * 1024;

impl SpoolBudget {
    /// A lease holding nothing yet.
    pub fn lease(self: &Arc<Self>) -> SpoolLease {
        SpoolLease {
            budget: self.clone(),
            held: 0,
        }
    }

    fn free_bytes(dir: &Path) -> Option<u64> {
        let stat = rustix::fs::statvfs(dir).ok()?;
        Some(stat.f_bavail.saturating_mul(stat.f_frsize))
    }
}

impl SpoolLease {
    /// Makes sure `total` bytes of this upload are covered by the budget
    /// and leave the free-space floor on the disk.
    pub fn cover(&mut self, total: u64) -> ApiResult<()> {
        if total <= self.held {
            return Ok(());
        }
        let want = total.div_ceil(SPOOL_STEP) * SPOOL_STEP - self.held;
        let budget = &self.budget;
        let before = budget.used.fetch_add(want, Ordering::AcqRel);
        if before + want > budget.budget {
            budget.used.fetch_sub(want, Ordering::AcqRel);
            return Err(ApiError::Busy {
                detail: "the node's spool space for uploads is in use; retry later".into(),
                retry_after: 5,
            });
        }
        self.held += want;
        match SpoolBudget::free_bytes(&budget.dir) {
            Some(free) if free < budget.min_free.saturating_add(want) => Err(ApiError::Busy {
                detail: "the node is short of disk space for uploads; retry later".into(),
                retry_after: 30,
            }),
            _ => Ok(()),
        }
    }
}

impl Drop for SpoolLease {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.held, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn the_spool_budget_is_shared_and_given_back() {
        let dir = tempfile::tempdir().unwrap();
        let budget = Arc::new(SpoolBudget {
            dir: dir.path().to_owned(),
            used: AtomicU64::new(0),
            budget: 3 * SPOOL_STEP,
            min_free: 0,
        });
        let mut first = budget.lease();
        first.cover(2 * SPOOL_STEP).unwrap();
        let mut second = budget.lease();
        second.cover(1).unwrap();
        assert!(matches!(
            second.cover(SPOOL_STEP + 1),
            Err(ApiError::Busy { .. })
        ));
        drop(first);
        second.cover(2 * SPOOL_STEP).unwrap();
        drop(second);
        assert_eq!(budget.used.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_free_space_floor_refuses_spooling() {
        let dir = tempfile::tempdir().unwrap();
        let budget = Arc::new(SpoolBudget {
            dir: dir.path().to_owned(),
            used: AtomicU64::new(0),
            budget: u64::MAX / 2,
            min_free: u64::MAX / 4,
        });
        let mut lease = budget.lease();
        assert!(matches!(lease.cover(1), Err(ApiError::Busy { .. })));
    }
}
