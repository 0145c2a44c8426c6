-- Coverage gaps (DESIGN.md §2: whatever the streams and logs name that the policy does not know is
-- reported, never dropped), one row per minute, kind, object and stream, read from the replay-safe
-- rollups (stream `coverage_gap` of event_rollups), so a restart or replay never double-counts them:
--   kind `field`: a field id the data catalog lacks, as its keyed fingerprint (it may be a value
--     typed into the wrong place; `lifemon fingerprint NAME` tells which name it is);
--   kind `table`, `db_user`, `sftp_account`, `sftp_path`: a database table, login, SFTP account or
--     directory a raw log names and policy/sources.yaml lacks, by name;
--   kind `cursor_rows_unknown`: a cursor over a table, whose rows pgaudit cannot count (no FETCH).
-- `lifemon catalog gaps` lists them; the report and the demo count them.
CREATE VIEW IF NOT EXISTS {db}.coverage_gaps AS
SELECT
    minute,
    if(jr_class = '', 'field', jr_class) AS kind,
    org AS object,
    outcome AS stream,
    sum(events) AS seen
FROM (  -- filtered inside: the alias `stream` below would otherwise be what WHERE compares
    SELECT minute, jr_class, org, outcome, events FROM {db}.event_rollups FINAL WHERE stream = 'coverage_gap'
)
GROUP BY minute, kind, object, stream;
