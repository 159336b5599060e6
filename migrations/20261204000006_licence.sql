-- Licences and who holds each, over time: projections of the ledger
-- (licence.granted, .sublicensed, .transferred, .revoked), which
-- `provreg rebuild` recomputes from the leaves alone. Instants are entry
-- timestamps in microseconds since the Unix epoch, as in `holding`;
-- booleans are 0 or 1.
create table licence (
    licence_id text primary key,
    content_id text not null,
    -- The licence a sublicence is carved from.
    parent_id text references licence (licence_id),
    -- Where, how and when: the JSON {"territories", "media", "term"}.
    scope text not null,
    exclusive bigint not null,
    sublicensable bigint not null,
    fee_ref text,
    granted_idx bigint not null references ledger_entry (idx),
    granted_us bigint not null,
    -- The revocation of this licence or of one it descends from.
    revoked_idx bigint references ledger_entry (idx),
    revoked_us bigint
);

create index licence_by_content on licence (content_id);
create index licence_by_parent on licence (parent_id);

create table licensee (
    licence_id text not null references licence (licence_id),
    party_id text not null references party (party_id),
    since_idx bigint not null references ledger_entry (idx),
    since_us bigint not null,
    until_idx bigint references ledger_entry (idx),
    until_us bigint,
    primary key (licence_id, since_idx)
);

create index licensee_by_party on licensee (party_id);
