-- Who holds what share of each content item, and from when to when: a
-- projection of the ledger (first holders of registrations and claims, then
-- transfers), which `provreg rebuild` recomputes from the leaves alone.
-- Times are the entries' timestamps in microseconds since the Unix epoch,
-- so "who held it at T" compares integers; the ledger's time never goes
-- backwards, so they order like the indexes.
create table holding (
    content_id text not null,
    party_id text not null references party (party_id),
    share_bp bigint not null,
    -- The entry from which the party held this share.
    since_idx bigint not null references ledger_entry (idx),
    since_us bigint not null,
    -- The entry that changed or ended it; null while it holds.
    until_idx bigint references ledger_entry (idx),
    until_us bigint,
    primary key (content_id, party_id, since_idx)
);

create index holding_by_party on holding (party_id, content_id);
