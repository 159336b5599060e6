-- Which registration or claim names which as derived_from: a projection of
-- the ledger, recomputed by `provreg rebuild`, read by the history and
-- derivation queries in both directions.
create table derivation (
    parent_id text not null,
    child_id text not null,
    -- The child's registration or claim.
    ledger_idx bigint not null references ledger_entry (idx),
    primary key (parent_id, child_id)
);

create index derivation_by_child on derivation (child_id);
