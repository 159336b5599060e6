-- Hash-only registrations (`content.claimed`, from POST /v1/content/batch):
-- the registrant fingerprinted the file itself and the registry never saw
-- its bytes. A claim is not a lock: the same bytes can still be registered
-- by upload, and that registration names the claim (`claim` in its leaf),
-- so claims live in their own table rather than under `content`'s unique
-- sha256. Content ids are unique across both tables (checked when applied).
create table content_claim (
    content_id text primary key,
    -- One claim per file.
    sha256 text not null unique,
    ledger_idx bigint not null references ledger_entry (idx)
);
create index content_claim_by_ledger_idx on content_claim (ledger_idx);
