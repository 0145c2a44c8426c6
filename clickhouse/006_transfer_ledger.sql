-- The transfer ledger (streams/transfer_ledger.py): to whom personal information went, under which
-- legal basis, which class, how many customers (PIPL art. 55-56; seed 002 §六.2(2)). One row per
-- transfer event, keyed by its event id: a replay or a restart rewrites the same rows, and readers
-- take FINAL. `recipient_id` is a declared recipient, a declared class of authorities, or
-- `undeclared_recipient`; `direction` the declared type (processor, third_party, regulator, public,
-- internal) or cross_border. `named` counts the pseudonyms the transfer named; `subject_count` is the
-- sender's count, read where it named none. The pseudonyms (`subjects`) expire at once: emptied by
-- the first merge after they are written (merge_with_ttl_timeout, 4 h by default); what stays is
-- their uniqExact state (`customers`, 16-byte hashes), computed as the row is inserted, for
-- policy/storage.yaml's days. (An EPHEMERAL `subjects` would store none, but ClickHouse cannot then
-- reset the state when its TTL comes: the merge fails on the missing column.)
CREATE TABLE IF NOT EXISTS {db}.transfer_ledger
(
    event_id        String,
    ts              DateTime64(3, 'UTC'),
    recipient_id    LowCardinality(String),
    recipient_name  LowCardinality(String),
    direction       LowCardinality(String),
    legal_basis     LowCardinality(String),
    jr_class        LowCardinality(String),
    records         UInt64,
    subject_count   UInt64,
    named           UInt64,
    subjects        Array(String) TTL toDateTime(ts),
    customers       AggregateFunction(uniqExact, String) DEFAULT arrayReduce('uniqExactState', subjects) TTL toDateTime(ts) + INTERVAL {pseudonym_ttl_days} DAY
)
ENGINE = ReplacingMergeTree
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 1000;
