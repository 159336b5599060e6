//! The RFC 9162 Merkle tree over ledger leaves.
//!
//! Hashing, proof construction and proof checking come from `tlog_tiles`, a
//! port of Go's `golang.org/x/mod/sumdb/tlog` (the code behind the Go checksum
//! database and the C2SP tlog specs). It uses the RFC 6962/9162 leaf and node
//! hashes, never duplicates an odd node, and persists every complete subtree
//! hash once, at a fixed "stored hash index". This module adds what the
//! storage layer needs around it: a reader that learns which stored hashes a
//! computation wants so they can be fetched from the database in one query.

use std::cell::RefCell;
use std::collections::HashMap;

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
pub use tlog_tiles::Hash;
use tlog_tiles::HashReader;

use crate::{RegistryError, Result};

/// Hash of the empty tree: SHA-256 of nothing.
pub const EMPTY_ROOT: Hash = tlog_tiles::EMPTY_HASH;

/// The RFC 9162 leaf hash, `SHA-256(0x00 || leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    tlog_tiles::record_hash(leaf)
}

/// Checks that `proof` shows leaf `index` with hash `leaf_hash` is in the
/// tree of `tree_size` leaves whose root is `root`.
pub fn verify_inclusion(
    leaf_hash: Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: Hash,
) -> Result<()> {
    tlog_tiles::check_record(&proof.to_vec(), tree_size, root, index, leaf_hash)
        .map_err(|e| RegistryError::invalid("inclusion proof", e.to_string()))
}

/// Checks that `proof` shows the tree of `from` leaves with root `from_root`
/// is a prefix of the tree of `to` leaves with root `to_root`.
pub fn verify_consistency(
    from: u64,
    to: u64,
    proof: &[Hash],
    from_root: Hash,
    to_root: Hash,
) -> Result<()> {
    tlog_tiles::check_tree(&proof.to_vec(), to, to_root, from, from_root)
        .map_err(|e| RegistryError::invalid("consistency proof", e.to_string()))
}

/// Base64 (standard, padded), the encoding every proof and root uses on the wire.
pub fn encode_hash(hash: &Hash) -> String {
    BASE64_STANDARD.encode(hash.0)
}

/// Parses a base64 hash as [`encode_hash`] writes it.
pub fn decode_hash(text: &str) -> Result<Hash> {
    let bytes = BASE64_STANDARD
        .decode(text)
        .map_err(|e| RegistryError::invalid("hash", format!("not base64: {e}")))?;
    let array: [u8; 32] = bytes
        .try_into()
        .map_err(|_| RegistryError::invalid("hash", "not 32 bytes"))?;
    Ok(Hash(array))
}

/// A [`HashReader`] over hashes fetched so far. A computation that asks for a
/// hash it does not hold fails, and the reader remembers what was asked for so
/// the caller can fetch it and run the computation again. Every `tlog_tiles`
/// computation reads once and its reads do not depend on hash values, so two
/// passes always suffice.
#[derive(Default)]
pub(crate) struct PrefetchReader {
    known: HashMap<u64, Hash>,
    missing: RefCell<Vec<u64>>,
}

impl PrefetchReader {
    pub(crate) fn take_missing(&mut self) -> Vec<u64> {
        std::mem::take(self.missing.get_mut())
    }

    pub(crate) fn insert(&mut self, index: u64, hash: Hash) {
        self.known.insert(index, hash);
    }
}

impl HashReader for PrefetchReader {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        let found: Option<Vec<Hash>> = indexes.iter().map(|i| self.known.get(i).copied()).collect();
        found.ok_or_else(|| {
            self.missing.borrow_mut().extend(
                indexes
                    .iter()
                    .filter(|i| !self.known.contains_key(i))
                    .copied(),
            );
            tlog_tiles::Error::IndexesNotInTree
        })
    }
}

#[cfg(test)]
mod tests {
    //! Known-answer tests. The leaves and expected roots and proofs are the
    //! RFC 6962 test vectors published with the Certificate Transparency
    //! reference code (and reused by Trillian and transparency-dev). Proofs for
    //! every leaf and size pair up to 9 are also checked against a direct
    //! transcription of the RFC 9162 section 2.1 definitions.

    use super::*;

    /// The eight standard test leaves, plus a ninth for odd-size trees.
    fn leaves() -> Vec<Vec<u8>> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
            "70",
        ]
        .iter()
        .map(|h| hex::decode(h).unwrap())
        .collect()
    }

    fn h(hex_str: &str) -> Hash {
        Hash(hex::decode(hex_str).unwrap().try_into().unwrap())
    }

    /// In-memory store of exactly the hashes `tlog_tiles` asks us to persist.
    struct Store(Vec<Hash>);

    impl HashReader for Store {
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
            Ok(indexes.iter().map(|&i| self.0[i as usize]).collect())
        }
    }

    fn build(n: usize) -> Store {
        let mut store = Store(vec![]);
        for (i, leaf) in leaves().iter().take(n).enumerate() {
            let new = tlog_tiles::stored_hashes(i as u64, leaf, &store).unwrap();
            assert_eq!(
                store.0.len() as u64,
                tlog_tiles::stored_hash_count(i as u64)
            );
            store.0.extend(new);
        }
        store
    }

    // --- RFC 9162 section 2.1, transcribed directly, as the reference. ---

    fn k_of(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    fn mth(d: &[Vec<u8>]) -> Hash {
        match d.len() {
            0 => EMPTY_ROOT,
            1 => leaf_hash(&d[0]),
            n => {
                let k = k_of(n);
                tlog_tiles::node_hash(mth(&d[..k]), mth(&d[k..]))
            }
        }
    }

    fn path(m: usize, d: &[Vec<u8>]) -> Vec<Hash> {
        let n = d.len();
        if n == 1 {
            return vec![];
        }
        let k = k_of(n);
        if m < k {
            let mut p = path(m, &d[..k]);
            p.push(mth(&d[k..]));
            p
        } else {
            let mut p = path(m - k, &d[k..]);
            p.push(mth(&d[..k]));
            p
        }
    }

    fn subproof(m: usize, d: &[Vec<u8>], b: bool) -> Vec<Hash> {
        let n = d.len();
        if m == n {
            return if b { vec![] } else { vec![mth(d)] };
        }
        let k = k_of(n);
        if m <= k {
            let mut p = subproof(m, &d[..k], b);
            p.push(mth(&d[k..]));
            p
        } else {
            let mut p = subproof(m - k, &d[k..], false);
            p.push(mth(&d[..k]));
            p
        }
    }

    /// Roots of the empty tree and of sizes 1 to 8 match the published values;
    /// size 9 matches the RFC definition.
    #[test]
    fn roots_match_known_answers() {
        let expected = [
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        for (n, want) in expected.iter().enumerate() {
            let store = build(n);
            assert_eq!(
                tlog_tiles::tree_hash(n as u64, &store).unwrap(),
                h(want),
                "size {n}"
            );
        }
        let all = leaves();
        let store = build(9);
        assert_eq!(tlog_tiles::tree_hash(9, &store).unwrap(), mth(&all));
    }

    /// Published inclusion proofs for the 8-leaf tree.
    #[test]
    fn inclusion_known_answers() {
        let cases: [(u64, u64, &[&str]); 4] = [
            (0, 1, &[]),
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
        ];
        for (index, size, want) in cases {
            let store_n = build(size as usize);
            let got = tlog_tiles::prove_record(size, index, &store_n).unwrap();
            let want: Vec<Hash> = want.iter().map(|x| h(x)).collect();
            assert_eq!(got, want, "leaf {index} of {size}");
        }
    }

    /// Published consistency proofs.
    #[test]
    fn consistency_known_answers() {
        let cases: [(u64, u64, &[&str]); 3] = [
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (from, to, want) in cases {
            let store = build(to as usize);
            let got = tlog_tiles::prove_tree(to, from, &store).unwrap();
            let want: Vec<Hash> = want.iter().map(|x| h(x)).collect();
            assert_eq!(got, want, "{from} -> {to}");
        }
    }

    /// Every inclusion proof for every leaf of every size up to 9 equals the
    /// RFC's PATH and verifies; a proof for the wrong leaf does not.
    #[test]
    fn every_inclusion_proof_up_to_9() {
        let all = leaves();
        for n in 1..=9usize {
            let store = build(n);
            let root = tlog_tiles::tree_hash(n as u64, &store).unwrap();
            assert_eq!(root, mth(&all[..n]));
            for m in 0..n {
                let proof = tlog_tiles::prove_record(n as u64, m as u64, &store).unwrap();
                assert_eq!(proof, path(m, &all[..n]), "leaf {m} of {n}");
                verify_inclusion(leaf_hash(&all[m]), m as u64, n as u64, &proof, root).unwrap();
                let other = leaf_hash(b"not a leaf");
                assert!(verify_inclusion(other, m as u64, n as u64, &proof, root).is_err());
            }
        }
    }

    /// Every consistency proof for every pair of sizes up to 9 equals the
    /// RFC's PROOF and verifies; against a wrong old root it does not.
    #[test]
    fn every_consistency_proof_up_to_9() {
        let all = leaves();
        for n in 1..=9usize {
            let store = build(n);
            let new_root = mth(&all[..n]);
            for m in 1..=n {
                let proof = tlog_tiles::prove_tree(n as u64, m as u64, &store).unwrap();
                assert_eq!(proof, subproof(m, &all[..n], true), "{m} -> {n}");
                let old_root = mth(&all[..m]);
                verify_consistency(m as u64, n as u64, &proof, old_root, new_root).unwrap();
                if m < n {
                    assert!(
                        verify_consistency(m as u64, n as u64, &proof, EMPTY_ROOT, new_root)
                            .is_err()
                    );
                }
            }
        }
    }

    /// Odd levels are not padded by duplication: [a,b,c] and [a,b,c,c] have
    /// different roots (the flaw that rules out merkle_light).
    #[test]
    fn no_duplicate_padding() {
        let three: Vec<Vec<u8>> = vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()];
        let mut four = three.clone();
        four.push(b"c".to_vec());
        assert_ne!(mth(&three), mth(&four));
    }

    /// The prefetching reader asks for what is missing, then answers.
    #[test]
    fn prefetch_reader_collects_missing() {
        let store = build(9);
        let mut reader = PrefetchReader::default();
        assert!(tlog_tiles::tree_hash(9, &reader).is_err());
        let missing = reader.take_missing();
        assert!(!missing.is_empty());
        for i in missing {
            reader.insert(i, store.0[i as usize]);
        }
        assert_eq!(
            tlog_tiles::tree_hash(9, &reader).unwrap(),
            tlog_tiles::tree_hash(9, &store).unwrap()
        );
    }
}
