-- The ledger and everything derived from it.
--
-- One schema serves SQLite (the embedded default) and PostgreSQL. To keep it
-- that way the columns use only bigint and text: hashes are lowercase hex and
-- leaves are their exact UTF-8 JSON text, so both engines store and compare
-- them identically and sqlx's Any driver maps them without surprises.
--
-- Every table here is written only by the Raft state machine, in one
-- transaction per applied batch, so the tables always agree with each other
-- and with sm_state.

-- One row per leaf of the Merkle log. `idx` is dense from 0 and never reused;
-- rows are never updated or deleted (snapshot install rebuilds from scratch).
create table ledger_entry (
    idx bigint primary key,
    -- The exact bytes whose RFC 9162 leaf hash is in the tree.
    leaf text not null,
    -- The entry's "type" field, so queries can filter without parsing JSON.
    entry_type text not null
);

-- Complete-subtree hashes of the Merkle tree, at the stored-hash index of
-- Go's sumdb/tlog layout (see registry/src/merkle.rs). Each is immutable once
-- written: appending leaf n adds 1 + (trailing one bits of n) rows.
create table merkle_hash (
    id bigint primary key,
    hash text not null
);

-- Registered content, keyed for the lookups the API offers. The full record
-- is the leaf itself; this table only indexes it.
create table content (
    content_id text primary key,
    -- Unique: the same bytes are registered once.
    sha256 text not null unique,
    ledger_idx bigint not null references ledger_entry (idx)
);

-- The state machine's own bookkeeping, one row. Stored in the same
-- transaction as the entries it describes, so after a crash the database
-- never claims an entry was applied that is not there, or the reverse.
create table sm_state (
    id bigint primary key check (id = 1),
    -- Leaves in the tree.
    tree_size bigint not null,
    -- Last applied Raft log id, as JSON written by raft-store; null before
    -- the first apply.
    last_applied text,
    -- Last applied Raft membership, as JSON written by raft-store.
    last_membership text
);

insert into sm_state (id, tree_size, last_applied, last_membership) values (1, 0, null, null);
