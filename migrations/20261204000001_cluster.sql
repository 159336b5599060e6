-- The cluster's own records, derived from its ledger entries (cluster.formed,
-- node.added, node.removed, membership.approved) by the state machine in the
-- apply transaction, like every other table: every replica builds the same.

-- The cluster's identity, from its cluster.formed entry; one row at most.
create table cluster_info (
    id bigint primary key check (id = 1),
    cluster_id text not null,
    origin text not null
);

-- Every node the ledger has recorded. Rows are never deleted: a removed
-- node keeps its row (removed_idx set), so its id is never given again.
create table cluster_node (
    node_id bigint primary key,
    address text not null,
    -- Ed25519, standard base64 of the raw 32 bytes: checks its approvals.
    node_key text not null,
    -- C2SP note verifier key of its checkpoints.
    checkpoint_key text not null,
    feature_level bigint not null,
    added_idx bigint not null references ledger_entry (idx),
    removed_idx bigint references ledger_entry (idx)
);

-- Recorded approvals of voter changes. `from_voters` and `to_voters` are the
-- sorted ids joined by commas, so a change is matched by plain equality.
create table cluster_approval (
    ledger_idx bigint primary key references ledger_entry (idx),
    from_voters text not null,
    to_voters text not null,
    approver bigint not null,
    approved_at text not null
);
create index cluster_approval_change on cluster_approval (from_voters, to_voters);
