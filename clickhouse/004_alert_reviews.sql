-- Analysts' reviews of alerts (`lifemon alerts ack` / `resolve`, streams/alert_review.py): one row
-- per review action, never updated or deleted, so the table is the triage's audit trail (lifemon's
-- ClickHouse account may insert and read, never alter or delete: deploy/clickhouse-init). An
-- alert's review state is its newest row's (argMax by `at`, then `review_id`); it covers the alert
-- as it was up to `alert_last_seen`, its last event when reviewed: events after that put the alert
-- back in the queue. This is the analyst's state, apart from the alert's own `status`, the
-- detector's episode (open, updated, closed: the window ended, not that anyone looked at it).
-- No customer id, pseudonym or C3 value: `note` and `analyst` are free text, in which customer ids
-- of the bank's form (organisation.yaml `customer_id_form`) become {customer}, pseudonyms
-- {pseudonym}, and card, ID and phone numbers their forms before they are stored
-- (streams/alert_review.py `redact`); `analyst` is the employee who acted. So the table needs no
-- TTL (as the alerts' pseudonym columns have): nothing in it names a customer, and the trail is kept.
-- `analyst` is who the reviewer said they are; `account` is the ClickHouse account that stored the
-- row, set by the server: an insert that names it is refused (a MATERIALIZED column), so a review
-- shows who was logged in whatever name it gives. One account per analyst (the lifemon_analyst
-- role of deploy/clickhouse-init) makes that a person; rows from before the column read ''.
CREATE TABLE IF NOT EXISTS {db}.alert_reviews
(
    alert_id            String,
    review_id           String,
    state               LowCardinality(String),
    analyst             String,
    note                String,
    alert_revision      UInt32,
    alert_last_seen     DateTime64(3, 'UTC'),
    at                  DateTime64(3, 'UTC'),
    account             LowCardinality(String) MATERIALIZED currentUser()
)
ENGINE = MergeTree
ORDER BY (alert_id, at, review_id);
