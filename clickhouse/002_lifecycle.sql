-- What the lifecycle dashboard (dashboards/lifemon-lifecycle.json) reads that no alert or rollup
-- holds; written by streams/lifecycle_ledger.py through the runtime's checkpoint, replay-safe.
-- The retention backlog itself is the open retention_expired alerts (the detector closes one when
-- its record goes), so it needs no table of its own.

-- Deletion requests and their execution (seed 004 §五.(四): answered within 15 days): one row per
-- lifecycle event that requests (deletion_requested) or executes (delete, anonymize, destroy) a
-- deletion, keyed by its event id, so a replay rewrites the same rows. `due` is the request's time
-- plus policy/retention.yaml's deletion_request_sla_days (epoch 0 on an execution). Panels take each
-- record's earliest request and earliest execution (min per record), which a duplicate cannot change.
CREATE TABLE IF NOT EXISTS {db}.deletion_events
(
    record_id   String,
    event_id    String,
    stage       LowCardinality(String),
    ts          DateTime64(3, 'UTC'),
    due         DateTime64(3, 'UTC'),
    system      LowCardinality(String)
)
ENGINE = ReplacingMergeTree
ORDER BY (record_id, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

-- The recipients' contracts as policy/recipients.yaml declares them, written at every start.
-- `policy_loaded` (epoch ms of that start) picks each contract's newest row, and panels read only the
-- newest start's rows, so a contract taken out of the policy leaves the dashboard too. `valid_to` is
-- the contract's last day as written; `valid_from` / `valid_until` are the first millisecond in force
-- and the first no longer in force (its days in the bank's timezone, as the transfer_policy detector
-- reads them: policy/contracts.py).
CREATE TABLE IF NOT EXISTS {db}.recipient_contracts
(
    recipient_id    LowCardinality(String),
    contract_id     String,
    recipient_type  LowCardinality(String),
    country         LowCardinality(String),
    name_zh         String,
    name_en         String,
    categories      Array(LowCardinality(String)),
    valid_to        Date,
    valid_from      DateTime64(3, 'UTC'),
    valid_until     DateTime64(3, 'UTC'),
    max_records     UInt64,
    volume_per      LowCardinality(String),
    policy_loaded   UInt64
)
ENGINE = ReplacingMergeTree(policy_loaded)
ORDER BY (recipient_id, contract_id)
SETTINGS non_replicated_deduplication_window = 1000;
