-- Parties (`party.registered`): who may hold rights, take licences,
-- register content or audit. The leaf is the record; these tables index it.

create table party (
    party_id text primary key,
    -- Standard base64 of the raw 32-byte Ed25519 key. Unique: a key
    -- identifies one signer, so a signature names its party unambiguously.
    public_key text not null unique,
    ledger_idx bigint not null references ledger_entry (idx)
);

-- The SHA-256 (hex) of each party's bearer token. Replicated state carried
-- beside the leaf in the Raft command and in snapshots, never in a leaf:
-- the token works on every node, and the public log does not show it.
create table party_token (
    token_sha256 text primary key,
    party_id text not null references party (party_id)
);

create index party_token_by_party on party_token (party_id);
