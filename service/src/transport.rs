//! Node-to-node transport for Raft RPC.

use std::io;

use raft_store::{Rpc, Transport};

/// The transport of a single-node cluster: there is never a peer to call,
/// so any attempt is reported as an unreachable peer rather than hidden.
#[derive(Debug, Clone, Copy)]
pub struct NoPeers;

impl Transport for NoPeers {
    async fn call(&self, addr: &str, rpc: Rpc, _body: Vec<u8>) -> io::Result<Vec<u8>> {
        Err(io::Error::new(
            io::ErrorKind::NotConnected,
            format!(
                "cannot send a {} request to {addr}: this node runs a single-node cluster",
                rpc.as_str()
            ),
        ))
    }
}
