-- lifemon's ClickHouse schema. Applied idempotently at every start (CREATE ... IF NOT EXISTS; a
-- column added to a table here later is added to a table made before it: one column per line);
-- `{db}` is replaced by the configured database. Replacing* engines plus deterministic keys make
-- every insert replay-safe: a restart that re-inserts a batch rewrites rows instead of adding them.
-- `non_replicated_deduplication_window` makes insert_deduplication_token work on a single server;
-- a cluster uses the Replicated* engines, which deduplicate by default.

CREATE DATABASE IF NOT EXISTS {db};

-- SOC alerts: the newest state of each alert id wins (FINAL / argMax). `version` is derived from the
-- content (last event time, then events aggregated, then closed after open; streams/sinks/clickhouse.py
-- `content_version`), not from `revision`: a re-run after a crash may batch differently and emit
-- fewer intermediate revisions, or re-send an older one, and the fullest row must still win.
-- A TTL of `{pseudonym_ttl_days}` marks each column that holds pseudonyms (PIPL art. 73: personal
-- information still): it is emptied policy/storage.yaml's pseudonym_ttl_days after `kept_from`, the
-- alert's last event or, if later, when the row was stored (an alert on a deadline years past, a
-- replay of an old day: counted from last_seen they were emptied at once), and the rest of the row
-- stays as the audit trail (streams/clickhouse.py applies a changed TTL at start).
-- `raised_at` is when lifemon first stored the alert (wall time, not its events'): where the SOC's
-- time to acknowledge and to resolve it start (`lifemon report`, the overview's "Alert handling").
-- `inserted_at` cannot say it: it is the newest row's, and older revisions go at the next merge. So
-- the sink carries it into every revision (streams/sinks/clickhouse.py `AlertSink`). A row stored
-- before the column reads its own `inserted_at` if it is a first revision (exact), else NULL: when
-- a revised alert was first raised is lost, and it is counted but not timed.
-- `regulation_en` holds the English of each clause of `regulation`, in its order: a row stored before
-- the column reads [] and its clauses as quoted, in Chinese (`lifemon alerts show` says so).
CREATE TABLE IF NOT EXISTS {db}.alerts
(
    alert_id            String,
    revision            UInt32,
    status              LowCardinality(String),
    detector            LowCardinality(String),
    rule_id             LowCardinality(String),
    rule_version        UInt16,
    severity            LowCardinality(String),
    title_zh            String,
    title_en            String,
    summary             String TTL toDateTime(kept_from) + INTERVAL {pseudonym_ttl_days} DAY,
    regulation          Array(String),
    regulation_en       Array(String) DEFAULT [],
    jr_class            LowCardinality(String),
    actor_id            String,
    actor_org           String,
    subject_count       UInt64,
    subjects_sample     Array(String) TTL toDateTime(kept_from) + INTERVAL {pseudonym_ttl_days} DAY,
    counts              Map(String, Int64),
    evidence_event_ids  Array(String),
    event_count         UInt64 DEFAULT 0,
    window_start        DateTime64(3, 'UTC'),
    window_end          DateTime64(3, 'UTC'),
    first_seen          DateTime64(3, 'UTC'),
    last_seen           DateTime64(3, 'UTC'),
    ocsf                String CODEC(ZSTD(3)) TTL toDateTime(kept_from) + INTERVAL {pseudonym_ttl_days} DAY,
    version             UInt64,
    inserted_at         DateTime64(3, 'UTC') DEFAULT now64(3),
    kept_from           DateTime64(3, 'UTC') DEFAULT greatest(last_seen, inserted_at),
    raised_at           Nullable(DateTime64(3, 'UTC')) DEFAULT if(revision <= 1, inserted_at, NULL)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY alert_id
SETTINGS non_replicated_deduplication_window = 1000;

-- Per-minute event counts by stream / JR class / org / outcome, for the management dashboards.
-- Keyed by source offset block; `version` (records of the block counted) picks the complete row.
-- `topic_id` is the Kafka topic id (KIP-516) of the topic incarnation the block was read from: a
-- topic deleted and re-created (or a broker rebuilt) starts again at offset 0, and its blocks must
-- add to the old ones' rows, not replace them. A re-read of the same incarnation (restart, replay,
-- a second consumer group) has the same id and still rewrites its rows. Rows written before the
-- column have '' (as do brokers that give no topic id). It is last in the key: ClickHouse lets an
-- existing table's key grow only by a column added in the same ALTER, at its end, with no DEFAULT
-- clause (streams/clickhouse.py `_add_missing_columns`).
-- `action` is an access event's action (view, query, export, download, print, update, delete): a
-- take-out and a screen read of the same class count apart (probe_v3 H4). '' on the other streams,
-- and on access rows written before the column: their action is unknown. Last in the key, as topic_id.
CREATE TABLE IF NOT EXISTS {db}.event_rollups
(
    topic       LowCardinality(String),
    topic_id    LowCardinality(String),
    partition   UInt32,
    block       UInt64,
    minute      DateTime('UTC'),
    stream      LowCardinality(String),
    jr_class    LowCardinality(String),
    org         LowCardinality(String),
    outcome     LowCardinality(String),
    action      LowCardinality(String),
    events      UInt64,
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (topic, partition, block, minute, stream, jr_class, org, outcome, topic_id, action)
SETTINGS non_replicated_deduplication_window = 1000;

-- Pipeline health, one row per checkpoint of each instance. `customers`: the customers the
-- customers reference stream names, as the instance holds them (the same on each of its rows, as
-- `alerts`; every instance reads the stream whole): the report bounds a count of customers it
-- cannot de-duplicate by it. 0: no such stream read, or a row from before the column.
CREATE TABLE IF NOT EXISTS {db}.pipeline_stats
(
    ts              DateTime64(3, 'UTC'),
    instance        LowCardinality(String),
    stream          LowCardinality(String),
    events          UInt64,
    dead_letters    UInt64,
    alerts          UInt64,
    lag             Int64,
    events_per_s    Float64,
    customers       UInt64 DEFAULT 0
)
ENGINE = MergeTree
ORDER BY (instance, stream, ts)
TTL toDateTime(ts) + INTERVAL 90 DAY;

-- Dead letters: what was rejected and why (never the record itself, which may hold PFI).
CREATE TABLE IF NOT EXISTS {db}.dead_letters
(
    topic       LowCardinality(String),
    partition   UInt32,
    offset      UInt64,
    kind        LowCardinality(String),
    field       String,
    message     String,
    seen_at     DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (topic, partition, offset)
SETTINGS non_replicated_deduplication_window = 1000;
