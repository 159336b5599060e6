//! Registering content: from a received upload to a ledger receipt.

use std::io::{BufRead, BufReader, Cursor, Seek};

use media_fingerprint::video::MAX_SAMPLING_STEP;
use media_fingerprint::{ContentFingerprint, MediaKind, MissingFingerprint, Sniffed};
use raft_store::ProposedLeaf;
use registry::{
    ApplyOutcome, ContentRegistration, EntryBody, Holder, IsccCodes, LedgerEntry, Metadata, Prints,
    Rejection,
};

use crate::auth::Actor;
use crate::error::{ApiError, ApiResult};
use crate::limits::Caller;
use crate::propose::{MakeLeaf, Placed, Refused, receipt};
use crate::state::AppState;
use crate::upload::{Body, Received};
use crate::views::{ContentView, RegistrationReceipt};

/// Fingerprints the upload, proposes its registration through Raft and
/// returns the receipt with a fresh inclusion proof and signed checkpoint.
pub async fn register(
    state: &AppState,
    mut upload: Received,
    registrant: &Actor,
) -> ApiResult<RegistrationReceipt> {
    let sha256 = hex::encode(upload.exact.sha256);
    // Cheap early answer for the common re-upload; the state machine checks
    // again when applying, which settles races between concurrent uploads.
    let (registered, claim) = state.registry.ids_by_sha256(&sha256).await?;
    if let Some(content_id) = registered {
        return Err(ApiError::Duplicate { content_id });
    }

    // Before any decoding, and so that a registration bound to be refused
    // is never proposed; apply checks again against the log.
    require_parents(state, &upload.metadata.derived_from).await?;
    first_holders(&mut upload.metadata, registrant);
    require_holders(state, &upload.metadata.holders).await?;
    let sniffed = media_fingerprint::sniff(&upload.head, upload.declared_type.as_deref());
    let fingerprint = fingerprint(state, &upload, &sniffed, Caller::Operator).await?;

    let prints = Prints {
        audio: fingerprint.audio.clone(),
        video: fingerprint.video.clone(),
        image_crops: fingerprint.image_crop_codes.clone(),
    };
    let mut missing = fingerprint.missing.clone();
    let prints = fit_prints(
        prints,
        raft_store::MAX_COMMAND_BYTES - PRINTS_MARGIN,
        &mut missing,
    )?;
    // A claim of these bytes by hash is confirmed, not blocked, by the
    // upload (`claim`, read above).
    let mut registration = ContentRegistration {
        content_id: uuid::Uuid::now_v7().to_string(),
        registered_at: String::new(),
        registrant: registrant.registrant().to_owned(),
        media_kind: sniffed.kind,
        media_type: sniffed.media_type,
        size: upload.exact.size,
        sha256,
        iscc: iscc_codes(&upload, &fingerprint)?,
        missing_fingerprints: missing,
        metadata: upload.metadata.clone(),
        prints_sha256: prints.as_deref().map(Prints::digest),
        claim,
    };
    let content_id = registration.content_id.clone();
    let placed = propose(state, &mut registration, prints).await?;
    let index = placed.index;
    tracing::info!(
        content.id = %content_id,
        ledger.index = index,
        media.kind = ?registration.media_kind,
        media.size = registration.size,
        "Registered content."
    );

    let ledger = receipt(state, placed).await?;
    Ok(RegistrationReceipt {
        content: ContentView::new(registration, index),
        ledger,
    })
}

/// A registration without holders is held whole by its registrant, when the
/// registrant is a party (the node's operator is not one).
pub(crate) fn first_holders(metadata: &mut Metadata, registrant: &Actor) {
    if let (true, Actor::Party(party)) = (metadata.holders.is_empty(), registrant) {
        metadata.holders = vec![Holder {
            party_id: party.party_id.clone(),
            share_bp: 10_000,
        }];
    }
}

/// Refuses, as apply would, holders naming a party that is not registered.
pub(crate) async fn require_holders(state: &AppState, holders: &[Holder]) -> ApiResult<()> {
    let mut lookup = state.applied();
    for holder in holders {
        if lookup
            .find(|| state.registry.party(&holder.party_id))
            .await?
            .is_none()
        {
            return Err(ApiError::BadRequest(format!(
                "metadata.holders names party {}, which is not registered",
                holder.party_id
            )));
        }
    }
    Ok(())
}

/// Refuses, as apply would, a `derived_from` naming content that is not
/// registered or claimed.
pub(crate) async fn require_parents(state: &AppState, parents: &[String]) -> ApiResult<()> {
    let mut lookup = state.applied();
    for parent in parents {
        if lookup
            .find(|| crate::views::content_by_id(&state.registry, parent))
            .await?
            .is_none()
        {
            return Err(Rejection::UnknownDerivedFrom {
                content_id: parent.clone(),
            }
            .into());
        }
    }
    Ok(())
}

/// The prints to propose: all of them when they fit in `room` bytes; else
/// with the video frame signatures sampled, one in the fewest frames that
/// fits (matching compares a sampled print with full ones); else without
/// the frame signatures (the audio print is small); else none. What is
/// sampled or left out is said in `missing`; the ISCC codes, which the
/// leaf carries, always stay.
fn fit_prints(
    mut prints: Prints,
    room: usize,
    missing: &mut Vec<MissingFingerprint>,
) -> ApiResult<Option<String>> {
    if prints.is_empty() {
        return Ok(None);
    }
    let json = prints.to_json()?;
    if json.len() <= room {
        return Ok(Some(json));
    }
    let full = json.len();
    tracing::warn!(
        prints.bytes = full,
        "Prints too large for one command; sampling or leaving some out."
    );
    if let Some(video) = prints.video.take() {
        // The frame signatures are nearly all of the prints' size, so one
        // in `step` frames takes about a `step`th of the room.
        let first = u32::try_from(full.div_ceil(room)).unwrap_or(u32::MAX);
        for step in first.max(2)..=MAX_SAMPLING_STEP {
            prints.video = Some(video.sampled(step));
            let json = prints.to_json()?;
            if json.len() <= room {
                missing.push(MissingFingerprint {
                    fingerprint: "video_signatures".to_owned(),
                    reason: format!(
                        "sampled: one frame signature in {step} is kept, as all of them ({full} bytes with the other prints) would not fit in the {room} bytes a ledger command may hold; matching compares the sampled print and the Video-Code"
                    ),
                });
                return Ok(Some(json));
            }
        }
        prints.video = None;
        missing.push(MissingFingerprint {
            fingerprint: "video_signatures".to_owned(),
            reason: format!(
                "the frame signatures take more of the {room} bytes a ledger command may hold than there is room for ({full} bytes with the other prints), even one in {MAX_SAMPLING_STEP}; matching uses the Video-Code"
            ),
        });
        let json = prints.to_json()?;
        if json.len() <= room {
            return Ok((!prints.is_empty()).then_some(json));
        }
    }
    missing.push(MissingFingerprint {
        fingerprint: "prints".to_owned(),
        reason: format!(
            "the fingerprints take {full} bytes, over the {room} bytes a ledger command may hold; matching uses the ISCC codes"
        ),
    });
    Ok(None)
}

/// Room left in a command for everything but the prints.
const PRINTS_MARGIN: usize = 1024 * 1024;

/// How many times a registration is proposed again when a claim of the
/// same bytes committed just before it, or when its outcome was unknown and
/// the lookup showed it did not commit.
const MAX_PROPOSALS: usize = 4;

/// Proposes `registration`, stamped by the proposer, and resolves a write
/// whose fate is unknown by looking up its content id in a linearizable
/// read: an entry that committed anywhere is found, and one that did not
/// can never commit after that read.
async fn propose(
    state: &AppState,
    registration: &mut ContentRegistration,
    prints: Option<String>,
) -> ApiResult<Placed> {
    let mut last_rejection = None;
    for _ in 0..MAX_PROPOSALS {
        let unstamped = registration.clone();
        let leaf_prints = prints.clone();
        let make: MakeLeaf = Box::new(move |at| {
            let mut registration = unstamped.clone();
            registration.registered_at = at.to_owned();
            ProposedLeaf::new(
                &LedgerEntry::new(EntryBody::ContentRegistered(registration)),
                leaf_prints.clone(),
            )
        });
        match state.proposer.propose_one(make).await {
            Ok(one) => match one.outcome {
                ApplyOutcome::Appended { index, tree_size } => {
                    registration.registered_at = one.at;
                    // The tree after the whole command: its receipts share
                    // one signed checkpoint.
                    let tree_size = one.tree_size.unwrap_or(tree_size).max(tree_size);
                    return Ok(Placed {
                        index,
                        tree_size,
                        leaf: Some(one.leaf),
                        proofs: one.proofs,
                    });
                }
                // A claim of the same bytes committed meanwhile: name it.
                ApplyOutcome::Rejected(Rejection::ClaimNotReferenced { claim_id }) => {
                    registration.claim = Some(claim_id.clone());
                    last_rejection = Some(Rejection::ClaimNotReferenced { claim_id });
                }
                ApplyOutcome::Rejected(rejection) => return Err(rejection.into()),
                ApplyOutcome::NoLedgerChange => {
                    return Err(ApiError::Internal(anyhow::anyhow!(
                        "a registration was applied without a ledger change"
                    )));
                }
            },
            Err(Refused::Unknown(why)) => {
                tracing::warn!(content.id = %registration.content_id, reason = %why, "A registration's outcome is unknown; looking it up.");
                state.node.linearize().await?;
                if let Some(record) = state.registry.content(&registration.content_id).await? {
                    let tree_size = state.registry.tree_size().await?;
                    *registration = record.registration;
                    return Ok(Placed {
                        index: record.ledger_index,
                        tree_size,
                        leaf: None,
                        proofs: None,
                    });
                }
                // Not committed, and now it never will be: propose again.
            }
            Err(Refused::Failed(e)) => return Err(e),
        }
    }
    Err(last_rejection.map_or_else(
        || ApiError::Unavailable("the registration could not be committed; retry".into()),
        ApiError::from,
    ))
}

/// Every ISCC unit of the upload, and the composite ISCC-CODE over them.
///
/// The Meta-Code is computed from the title alone, so the same title always
/// gives the same Meta-Code whatever else the metadata says. The composite
/// takes the Content-Code of the media's own kind (for video the Video-Code,
/// not its sound track's Audio-Code), as the ISCC reference does.
fn iscc_codes(upload: &Received, fingerprint: &ContentFingerprint) -> ApiResult<IsccCodes> {
    let meta = match &upload.metadata.title {
        Some(title) => Some(
            media_fingerprint::iscc::meta_code(title, None, None)
                .map_err(|e| ApiError::BadRequest(format!("metadata.title: {e}")))?
                .iscc,
        ),
        None => None,
    };
    let content = fingerprint
        .image_code
        .as_ref()
        .or(fingerprint.video_code.as_ref())
        .or(fingerprint.audio_code.as_ref());
    let units: Vec<&str> = meta
        .iter()
        .chain(content)
        .map(String::as_str)
        .chain([
            upload.exact.data_code.as_str(),
            upload.exact.instance_code.as_str(),
        ])
        .collect();
    let code = media_fingerprint::iscc::iscc_code(&units).map_err(|e| {
        ApiError::Internal(anyhow::Error::new(e).context("composing the ISCC-CODE"))
    })?;
    Ok(IsccCodes {
        code: Some(code),
        meta,
        instance: upload.exact.instance_code.clone(),
        data: upload.exact.data_code.clone(),
        image: fingerprint.image_code.clone(),
        audio: fingerprint.audio_code.clone(),
        video: fingerprint.video_code.clone(),
    })
}

/// Fingerprints an upload within `caller`'s bounds: the decode waits for
/// a slot and for its memory, estimated from the file's headers, in the
/// node's decode budget; it stops at the time bound, and as soon as the
/// client goes away (the request future is then dropped, which cancels it).
pub(crate) async fn fingerprint(
    state: &AppState,
    upload: &Received,
    sniffed: &Sniffed,
    caller: Caller,
) -> ApiResult<ContentFingerprint> {
    let sniffed = sniffed.clone();
    let mut limits = state.limits.clone();
    limits.max_decode_time = Some(state.gates.decode_time(caller));
    // Its own flag: the one in the shared limits is every request's.
    limits.cancel = media_fingerprint::Cancel::new();
    let cancel = CancelOnDrop(limits.cancel.clone());
    let open = || -> ApiResult<Box<dyn Reader>> {
        Ok(match &upload.body {
            Body::Memory(bytes) => Box::new(Cursor::new(bytes.clone())),
            Body::File { file, .. } => Box::new(BufReader::new(file.reopen().map_err(|e| {
                ApiError::Internal(anyhow::Error::new(e).context("reopening the spooled upload"))
            })?)),
        })
    };
    if sniffed.kind == MediaKind::Other {
        // Nothing to decode: only the exact hashes, computed already.
        return media_fingerprint::content_fingerprint(open()?, &sniffed, &limits).map_err(stopped);
    }
    let headers = open()?;
    let cost = {
        let (sniffed, limits) = (sniffed.clone(), limits.clone());
        // Reading headers touches the disk; keep it off the async workers.
        tokio::task::spawn_blocking(move || {
            media_fingerprint::decode_cost(headers, &sniffed, &limits)
        })
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("estimating a decode")))?
    };
    let cost = match cost {
        Ok(cost) => cost.peak_bytes,
        // Headers the estimate cannot read: the decoder will refuse them
        // too, cheaply, and say why in `missing`; it gets a small share.
        Err(_) => 16 << 20,
    };
    let permit = state.gates.decode(caller, cost).await?;
    let reader = open()?;
    // Decoding is CPU-bound; keep it off the async workers. The permit
    // stays with the decode until it really stops.
    let done = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        media_fingerprint::content_fingerprint(reader, &sniffed, &limits)
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("fingerprinting panicked")))?;
    drop(cancel);
    done.map_err(stopped)
}

/// A decode that stopped before its end: too slow for the bound, or its
/// client went away (then nobody reads the answer).
fn stopped(e: media_fingerprint::FingerprintError) -> ApiError {
    ApiError::Unprocessable(e.to_string())
}

/// Cancels a decode when the request that started it is dropped.
struct CancelOnDrop(media_fingerprint::Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// What fingerprinting reads an upload through.
trait Reader: BufRead + Seek + Send + Sync {}
impl<T: BufRead + Seek + Send + Sync> Reader for T {}

#[cfg(test)]
mod tests {
    use media_fingerprint::audio::AudioPrint;
    use media_fingerprint::video::VideoPrint;

    use super::*;

    fn video(frames: usize) -> VideoPrint {
        VideoPrint {
            duration_seconds: frames as f64 / 5.0,
            frames_per_second: 5.0,
            frame_signatures: vec![vec![1; 380]; frames],
        }
    }

    fn audio(items: usize) -> AudioPrint {
        AudioPrint {
            duration_seconds: items as f64 / 8.0,
            chromaprint: (0..items as u32).collect(),
        }
    }

    /// Room for a command's prints in these tests: small, so the prints
    /// that overflow it stay small too.
    const ROOM: usize = 20_000;

    /// Prints that fit go whole; frame signatures too large for a command
    /// are left out first, keeping the audio print; if even that does not
    /// fit, no prints go; each omission is said in `missing`.
    #[test]
    fn prints_are_fitted_to_a_command() {
        let small = Prints {
            audio: Some(audio(500)),
            video: Some(video(100)),
            image_crops: vec![],
        };
        let mut missing = vec![];
        assert!(fit_prints(small, ROOM, &mut missing).unwrap().is_some());
        assert!(missing.is_empty());

        let long_video = Prints {
            audio: Some(audio(500)),
            video: Some(video(1000)),
            image_crops: vec![],
        };
        let json = fit_prints(long_video, ROOM, &mut missing).unwrap().unwrap();
        assert!(json.len() <= ROOM);
        let kept: Prints = serde_json::from_str(&json).unwrap();
        assert!(kept.audio.is_some());
        let sampled = kept.video.unwrap();
        let step = (5.0 / sampled.frames_per_second).round() as usize;
        assert!(step >= 2, "{}", sampled.frames_per_second);
        assert_eq!(sampled.frame_signatures.len(), 1000usize.div_ceil(step));
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].fingerprint, "video_signatures");
        assert!(
            missing[0]
                .reason
                .starts_with("sampled: one frame signature in")
        );

        // Too long even sampled one in 64: the frame signatures go.
        let mut missing = vec![];
        let endless = Prints {
            audio: Some(audio(500)),
            video: Some(video(100_000)),
            image_crops: vec![],
        };
        let json = fit_prints(endless, ROOM, &mut missing).unwrap().unwrap();
        assert!(json.contains("chromaprint") && !json.contains("frame_signatures"));
        assert_eq!(missing.len(), 1);
        assert!(!missing[0].reason.starts_with("sampled"));

        let mut missing = vec![];
        let huge_audio = Prints {
            audio: Some(audio(20_000)),
            video: Some(video(10)),
            image_crops: vec![],
        };
        assert!(
            fit_prints(huge_audio, ROOM, &mut missing)
                .unwrap()
                .is_none()
        );
        let which: Vec<&str> = missing.iter().map(|m| m.fingerprint.as_str()).collect();
        assert_eq!(which, ["video_signatures", "prints"]);
    }
}
