-- Party keys over time and the intents already applied.

-- Every key a party has held, current or rotated out. Unique across all
-- parties and all time: a signature names one signer forever, and a key
-- rotated out (perhaps because it leaked) never signs for anyone again.
create table party_key (
    public_key text primary key,
    party_id text not null references party (party_id),
    -- The leaf that gave the party this key.
    ledger_idx bigint not null references ledger_entry (idx)
);

insert into party_key (public_key, party_id, ledger_idx)
    select public_key, party_id, ledger_idx from party;

-- The replay key (SHA-256 of the signed message, hex) of every applied
-- intent: an intent is applied at most once.
create table intent_applied (
    replay_key text primary key,
    ledger_idx bigint not null references ledger_entry (idx)
);
