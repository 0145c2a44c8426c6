-- The incident-response team's reviews of incidents (`lifemon incidents ack` / `resolve`,
-- streams/reviews.py): as alert_reviews (004) is for alerts, one row per action, never updated or
-- deleted, the newest row an incident's review state, covering the incident up to
-- `incident_last_seen`, to the customers and records it counted then and to its member alerts then: an incident that grew
-- after it was notified (a later event, or a late alert's earlier ones) needs its report brought up
-- to date, and is back in the queue. `notified` records that the report to the authorities and the
-- individuals' notice were made (PIPL art. 57), which lifemon cannot see for itself; `notice_waived`
-- that the report was made and the individuals' notice waived (seed 004 应急管理(4)), `note` the
-- measures that avoided the harm. A verdict is a string: a new one needs no migration, and a
-- release that does not know it reads it as reviewed, owing no report (streams/reviews.py OPEN). The same
-- redaction as alert_reviews' (no customer id, pseudonym or number in `note` or `analyst`), so no TTL.
CREATE TABLE IF NOT EXISTS {db}.incident_reviews
(
    incident_id         String,
    review_id           String,
    state               LowCardinality(String),
    analyst             String,
    note                String,
    incident_revision   UInt32,
    incident_last_seen  DateTime64(3, 'UTC'),
    at                  DateTime64(3, 'UTC'),
    incident_subjects_distinct  UInt64,
    incident_records    UInt64,
    incident_alert_ids  Array(String),
    account             LowCardinality(String) MATERIALIZED currentUser()
)
ENGINE = MergeTree
ORDER BY (incident_id, at, review_id);
