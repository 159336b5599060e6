-- Similarity indexes: how POST /v1/content/match finds registered content
-- that is the same or similar without scanning every registration.
--
-- Like the ledger tables these are written only by the Raft state machine,
-- in the apply transaction, and are derived from the log (the leaf and the
-- fingerprints proposed with it), so every replica builds the same indexes.

-- The audio and video fingerprints of a registration, kept beside the leaf
-- because they are too large to be part of it. The leaf carries the SHA-256
-- of this exact text (`prints_sha256`), so they are still anchored.
create table content_print (
    content_id text primary key references content (content_id),
    prints text not null
);

-- Multi-index hashing over 64-bit ISCC units. Each code is cut into bands;
-- two codes within Hamming distance 2*bands-1 agree within one bit on at
-- least one band, so probing each band's value and its one-bit neighbours
-- finds every such code through this index.
create table code_band (
    -- Which unit: image, audio, video or data.
    kind text not null,
    -- Which band of the code.
    band bigint not null,
    -- The band's bits.
    value bigint not null,
    -- The whole code (its 64 bits as a signed integer), so candidates need no
    -- second lookup.
    code bigint not null,
    -- The registration's leaf index: an integer keeps the index small.
    ledger_idx bigint not null references ledger_entry (idx)
);
-- Covering: a probe reads only this index, never the table, so a query
-- costs a few index range scans whatever the table's size.
create index code_band_lookup on code_band (kind, band, value, code, ledger_idx);

-- Matches are reported by content id.
create index content_by_ledger_idx on content (ledger_idx);

-- Sampled Chromaprint items, for finding the recording an audio excerpt
-- comes from. Only items whose low three bits are zero are kept: the choice
-- depends on the value, not the position, so an excerpt samples the same
-- items as its source.
create table audio_item (
    value bigint not null,
    -- The item's index in the registration's fingerprint.
    position bigint not null,
    content_id text not null references content (content_id)
);
create index audio_item_lookup on audio_item (value);
