-- Leakage incidents (streams/incidents.py, docs/incidents.md): the newest revision of each, for the
-- incident-response team's `lifemon incidents`, the report and the dashboards, beside the incidents
-- topic that `lifemon notify` delivers from. Written by the checkpoint with the alerts, before the
-- offsets that produced them are committed; a replay rewrites the same rows. `version` is derived
-- from the content (last event time, then closed after open), not from `revision` (the sum of its
-- alerts' revisions): a replay after a crash batches differently, revises its alerts fewer times,
-- and must still replace the rows the crashed run wrote (equal versions: the last insert wins).
-- `incident` is the whole record as JSON (its notice, the pseudonyms of the subjects it lists).
CREATE TABLE IF NOT EXISTS {db}.incidents
(
    incident_id         String,
    revision            UInt32,
    status              LowCardinality(String),
    key_kind            LowCardinality(String),
    key                 String,
    severity            LowCardinality(String),
    leakage_classes     Array(String),
    title_zh            String,
    title_en            String,
    subjects_distinct   UInt64,
    records             UInt64,
    first_seen          DateTime64(3, 'UTC'),
    last_seen           DateTime64(3, 'UTC'),
    first_due           DateTime64(3, 'UTC'),
    alert_ids           Array(String),
    incident            String CODEC(ZSTD(3)) TTL toDateTime(kept_from) + INTERVAL {pseudonym_ttl_days} DAY,
    version             UInt64,
    inserted_at         DateTime64(3, 'UTC') DEFAULT now64(3),
    kept_from           DateTime64(3, 'UTC') DEFAULT greatest(last_seen, inserted_at)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY incident_id
SETTINGS non_replicated_deduplication_window = 1000;
