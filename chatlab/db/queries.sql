-- Every SQL statement of the lab outside the migrations, one named block each
-- (procrastinate's sql/queries.sql style).  Python asks for a query by name
-- (chatlab.db.queries.query) and never builds SQL text: values are bound parameters
-- (%(name)s), and the few identifiers (a schema name) are {placeholders} filled with
-- psycopg.sql.Identifier.  A block starts with "-- name: <name>"; the comment lines after
-- it are its documentation.

-- ---------------------------------------------------------------------------------------
-- connection and clock
-- ---------------------------------------------------------------------------------------

-- name: set_search_path
-- The chat schema first; pg_temp last so a temporary object can never shadow a table.
SET search_path TO {schema}, pg_temp

-- name: set_clock
-- Pin chatlab_now() for this connection ('' = real time again): tests and replays.
SELECT set_config('chatlab.now', %(at)s, false)

-- name: lab_now
-- chatlab_now() in lab seconds (docs/semantics.md, "Clock").
SELECT chatlab_seconds(chatlab_now())

-- name: lab_epoch
-- The epoch migration 018 defines (a test compares it with chatlab.db.clock.EPOCH).
SELECT chatlab_epoch()

-- name: server_clock
-- The server's wall clock now (the load test records it at scenario t = 0).
SELECT clock_timestamp()

-- name: try_claim
-- A session-level advisory lock: which Locust user plays which operator (or housekeeper),
-- unique across worker processes; namespace = the run's schema.
SELECT pg_try_advisory_lock(%(namespace)s, %(key)s)

-- name: connection_budget
-- Connections a load test may still open on this server.
SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int
       - (SELECT count(*) FROM pg_stat_activity)

-- ---------------------------------------------------------------------------------------
-- the chat system's functions (migrations 014-016; docs/semantics.md, "Operations")
-- ---------------------------------------------------------------------------------------

-- name: create_operator
SELECT create_operator(%(name)s, %(max_chats)s, %(online)s, %(skills)s::text[])

-- name: define_topic
SELECT define_topic(%(name)s, %(skill)s, %(priority)s, %(weight)s)

-- name: set_operator_online
-- Returns how many chats going offline released.
SELECT set_operator_online(%(operator_id)s, %(online)s)

-- name: touch_operator
SELECT touch_operator(%(operator_id)s)

-- name: real_user_message
SELECT real_user_message(%(real_user_id)s, %(body)s, %(chat_id)s::bigint, %(topic)s::text)

-- name: assign_chat_to_operator
-- NULL when the operator is offline, full, or nothing is eligible for it.
SELECT assign_chat_to_operator(%(operator_id)s, %(policy)s, %(fallback_after)s::float8, %(salt)s::bigint,
                               %(relax_after)s::float8, %(sla_targets)s::float8[], %(sticky_for)s::float8,
                               %(fair_limit)s::integer, %(fair_window)s::float8)

-- name: dispatch_waiting_chats
-- Push mode: one dispatch round-robin over the online operators (021); one row per assignment made.
SELECT operator_id, chat_id FROM dispatch_waiting_chats(%(policy)s, %(fallback_after)s::float8, %(salt)s::bigint,
                                                        %(relax_after)s::float8, %(sla_targets)s::float8[],
                                                        %(sticky_for)s::float8, %(fair_limit)s::integer,
                                                        %(fair_window)s::float8)

-- name: listen_work
-- A dispatcher's session: wake on chatlab_work (payload: the schema whose queue changed).
LISTEN chatlab_work

-- name: listen_news
-- A load-test process's wake-up line: 022's chatlab_news ('<schema>:a|f|w:<operator>' / '<schema>:c:<chat>').
LISTEN chatlab_news

-- name: notify_on
-- This session's queue changes wake the dispatchers (021's trigger sends NOTIFY only then).
SET chatlab.notify = on

-- name: operator_message
SELECT operator_message(%(operator_id)s, %(chat_id)s, %(body)s)

-- name: unassign_chat
SELECT unassign_chat(%(operator_id)s, %(chat_id)s)

-- name: end_chat
SELECT end_chat(%(chat_id)s, %(reason)s)

-- name: operator_chat_messages
SELECT * FROM operator_chat_messages(%(operator_id)s, %(chat_id)s)

-- name: release_idle_operator_chats
SELECT release_idle_operator_chats(%(seconds)s::float8)

-- name: release_unanswered_chats
SELECT release_unanswered_chats(%(seconds)s::float8)

-- name: release_and_reassign_chat
SELECT release_and_reassign_chat(%(chat_id)s, %(reason)s)

-- name: detect_stuck_chats
SELECT * FROM detect_stuck_chats(%(hours)s::float8)

-- name: get_assignment_queue_status
SELECT * FROM get_assignment_queue_status()

-- name: chat_state_summary
SELECT * FROM chat_state_summary

-- name: chat_next_state
SELECT chat_next_state(%(state)s, %(event)s, %(legacy)s)

-- name: chat_state_verification
SELECT * FROM chat_state_verification()

-- name: has_access_verification
-- Migration 017 adds the access checks; an older schema has none.
SELECT to_regproc('chat_access_verification') IS NOT NULL

-- name: chat_access_verification
SELECT * FROM chat_access_verification()

-- ---------------------------------------------------------------------------------------
-- reading rows (tests, the CLI, policy snapshots)
-- ---------------------------------------------------------------------------------------

-- name: chat_state
SELECT chat_state FROM chats WHERE id = %(chat_id)s

-- name: chat
SELECT * FROM chats WHERE id = %(chat_id)s

-- name: operator
SELECT * FROM operators WHERE id = %(operator_id)s

-- name: chats
SELECT * FROM chats ORDER BY id

-- name: operators
SELECT * FROM operators ORDER BY id

-- name: assignments
SELECT * FROM chat_assignments ORDER BY id

-- name: chat_assignments
SELECT * FROM chat_assignments WHERE chat_id = %(chat_id)s ORDER BY id

-- name: active_chats
SELECT id FROM chats WHERE chat_state = 'assigned' AND assigned_operator_id = %(operator_id)s ORDER BY id

-- name: snapshot_chats
-- The open chats as a policy sees them (sim.policies.ChatView), times in lab seconds.
SELECT id, chat_state, chatlab_seconds(waiting_since), last_operator_id, skill, priority, weight,
       chatlab_seconds(created_at), sticky_operator_id
FROM chats WHERE chat_state <> 'completed' ORDER BY id

-- name: snapshot_operators
-- Every operator as a policy sees it (sim.policies.OperatorView), times in lab seconds: the
-- capacity in use (chat weights) and the assignments after lab second %(since)s (the fair window).
SELECT o.id, o.is_online,
       (SELECT coalesce(sum(c.weight), 0) FROM chats c WHERE c.chat_state = 'assigned' AND c.assigned_operator_id = o.id),
       o.max_chats, chatlab_seconds(o.last_assigned_at), chatlab_seconds(o.last_activity_at), o.skills,
       (SELECT count(*) FROM chat_assignments a
        WHERE a.operator_id = o.id AND chatlab_seconds(a.assigned_at) > %(since)s::float8),
       (SELECT count(*) FROM chat_assignments a WHERE a.operator_id = o.id)
FROM operators o ORDER BY o.id

-- name: event_log
-- The history as sim/eventlog.py's rows (a chat's topic and real user on each of its rows);
-- time in lab seconds of the database clock.
SELECT {schema}.chatlab_seconds(e.at) AS time, e.chat_id, e.operator_id, e.event, e.from_state, e.to_state,
       e.reason, c.topic, c.real_user_id AS user_id
FROM {schema}.chat_events e LEFT JOIN {schema}.chats c ON c.id = e.chat_id
ORDER BY e.at, e.id

-- ---------------------------------------------------------------------------------------
-- what a load test's clients see (loadtest/users)
-- ---------------------------------------------------------------------------------------

-- name: chat_status
-- A real user's client: the state, and whether the operator answered its last message
-- (an operator message after the user's last message).
SELECT chat_state, operator_replied_at, last_user_message_at
FROM chats
WHERE id = %(chat_id)s

-- name: operator_inbox
-- An operator's client: is it (still) logged in, which chats does it hold, and does each
-- have a user message to answer (pending) and since when.  Under the legacy policy a held
-- chat may have nothing to answer (a premature assignment): it just occupies a slot until
-- its user writes, as in the simulation.  ready_at: since when the operator could have worked on
-- it (the later of its assignment and the user's last message), where the model's worker starts.
SELECT o.is_online,
       c.id AS chat_id,
       c.last_user_message_at > coalesce(c.operator_replied_at, '-infinity'::timestamptz) AS pending,
       c.last_user_message_at AS pending_since,
       greatest(c.last_user_message_at, a.assigned_at) AS ready_at
FROM operators o
LEFT JOIN chats c ON c.assigned_operator_id = o.id AND c.chat_state = 'assigned'
LEFT JOIN chat_assignments a ON a.chat_id = c.id AND a.released_at IS NULL
WHERE o.id = %(operator_id)s
ORDER BY c.last_user_message_at, c.id

-- name: live_numbers
-- The run so far, read while it runs (the load test's web UI tab, loadtest/webui.py), in one
-- snapshot and one row; times in wall seconds of the database clock.  The definitions are
-- chatlab.metrics' (episodes.py): a repeat assigns a chat to the operator of its previous
-- assign, a premature one assigns it from waiting_real_user_reply, a served wait runs from the
-- chat's entry into the queue (from another state, or its creation) to the assign that ends it.
-- operators: one JSON object per operator (id, online, holding, assignments, repeats, premature).
WITH asg AS (
    SELECT e.id, e.chat_id, e.operator_id, e.at, e.from_state,
           e.operator_id = lag(e.operator_id) OVER (PARTITION BY e.chat_id ORDER BY e.id) AS is_repeat
    FROM chat_events e WHERE e.event = 'assign'
), waits AS (
    SELECT extract(epoch FROM a.at - (
               SELECT max(s.at) FROM chat_events s
               WHERE s.chat_id = a.chat_id AND s.id < a.id AND s.to_state = 'waiting_assignment'
                 AND s.from_state IS DISTINCT FROM 'waiting_assignment'))::float8 AS wait_s
    FROM asg a WHERE a.from_state = 'waiting_assignment'
), per_operator AS (
    SELECT o.id, o.is_online,
           (SELECT count(*) FROM chats c WHERE c.chat_state = 'assigned' AND c.assigned_operator_id = o.id) AS holding,
           count(a.id) AS assignments,
           count(a.id) FILTER (WHERE a.is_repeat) AS repeats,
           count(a.id) FILTER (WHERE a.from_state = 'waiting_real_user_reply') AS premature
    FROM operators o LEFT JOIN asg a ON a.operator_id = o.id
    GROUP BY o.id, o.is_online
)
SELECT (SELECT count(*) FROM chats) AS chats,
       (SELECT count(*) FROM chats WHERE chat_state = 'completed') AS completed,
       (SELECT count(*) FROM chats WHERE chat_state = 'waiting_assignment') AS queue_length,
       (SELECT count(*) FROM asg) AS assignments,
       (SELECT count(*) FROM asg WHERE is_repeat) AS repeats,
       (SELECT count(*) FROM asg WHERE from_state = 'waiting_real_user_reply') AS premature,
       (SELECT count(wait_s) FROM waits) AS waits_served,
       (SELECT percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY wait_s) FROM waits) AS wait_percentiles_s,
       (SELECT coalesce(json_agg(json_build_object(
            'id', p.id, 'online', p.is_online, 'holding', p.holding, 'assignments', p.assignments,
            'repeats', p.repeats, 'premature', p.premature) ORDER BY p.id), '[]'::json)
        FROM per_operator p) AS operators

-- ---------------------------------------------------------------------------------------
-- checks after load (chatlab.correctness, the load test's history checks)
-- ---------------------------------------------------------------------------------------

-- name: integrity
-- Did the real functions keep their promises under concurrency?
--   assignments        history rows (chat_assignments)
--   double_assigned    pairs of holds of the SAME chat whose [assigned_at, released_at)
--                      intervals overlap: a chat held by two operators at once (must be 0)
--   over_capacity      holds that began while the operator held more than max_chats units
--                      (chat weights; must be 0)
WITH holds AS (
    SELECT a.id, a.chat_id, a.operator_id, c.weight,
           tstzrange(a.assigned_at, coalesce(a.released_at, 'infinity'::timestamptz), '[)') AS span
    FROM chat_assignments a JOIN chats c ON c.id = a.chat_id
)
SELECT
    (SELECT count(*) FROM holds) AS assignments,
    (SELECT count(*) FROM holds a JOIN holds b
        ON a.chat_id = b.chat_id AND a.id < b.id AND a.span && b.span) AS double_assigned,
    (SELECT count(*) FROM holds a JOIN operators o ON o.id = a.operator_id
        WHERE (SELECT sum(b.weight) FROM holds b
               WHERE b.operator_id = a.operator_id AND b.span @> lower(a.span)) > o.max_chats) AS over_capacity

-- name: read_only_snapshot
-- All invariant checks see one snapshot, even while load is still running.
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY

-- name: set_local_search_path
SET LOCAL search_path TO {schema}, pg_temp

-- name: invariants
-- Invariants the chat system must keep after any amount of concurrent load or injected
-- faults.  One row per violation: (check, chat_id, operator_id, detail).  No rows = all hold.
WITH holds AS (
    SELECT a.id, a.chat_id, a.operator_id, a.released_at, c.weight,
           tstzrange(a.assigned_at, coalesce(a.released_at, 'infinity'::timestamptz), '[)') AS span
    FROM chat_assignments a JOIN chats c ON c.id = a.chat_id
),
walk AS (   -- each chat's state-changing events in order, with the previous event's target
    SELECT e.chat_id, e.id, e.event, e.from_state, e.to_state,
           lag(e.to_state) OVER (PARTITION BY e.chat_id ORDER BY e.id)  AS prev_to,
           row_number() OVER (PARTITION BY e.chat_id ORDER BY e.id)     AS n,
           row_number() OVER (PARTITION BY e.chat_id ORDER BY e.id DESC) AS n_back
    FROM chat_events e
    WHERE e.chat_id IS NOT NULL
)
-- 1. a chat held by two operators at once (overlapping holds of the same chat)
SELECT 'held_twice' AS check, a.chat_id, b.operator_id,
       format('holds %s and %s overlap', a.id, b.id) AS detail
FROM holds a JOIN holds b ON a.chat_id = b.chat_id AND a.id < b.id AND a.span && b.span
UNION ALL
-- 2. an operator holding more than max_chats units (chat weights) at the start of one of its holds
SELECT 'over_capacity', a.chat_id, a.operator_id,
       format('%s units held at once, max_chats %s', x.held, o.max_chats)
FROM holds a JOIN operators o ON o.id = a.operator_id
CROSS JOIN LATERAL (SELECT sum(b.weight) AS held FROM holds b
                    WHERE b.operator_id = a.operator_id AND b.span @> lower(a.span)) x
WHERE x.held > o.max_chats
UNION ALL
-- 3. current state vs operator: assigned <=> has an operator
SELECT 'assigned_without_operator', c.id, c.assigned_operator_id,
       format('state %s, assigned_operator_id %s', c.chat_state, c.assigned_operator_id)
FROM chats c
WHERE (c.chat_state = 'assigned') <> (c.assigned_operator_id IS NOT NULL)
UNION ALL
-- 4. history agrees with the present: an assigned chat has exactly one open hold, by its operator
SELECT 'history_mismatch', c.id, c.assigned_operator_id,
       format('state %s, operator %s, open holds by %s', c.chat_state, c.assigned_operator_id,
              coalesce((SELECT string_agg(h.operator_id::text, ',') FROM holds h
                        WHERE h.chat_id = c.id AND h.released_at IS NULL), 'nobody'))
FROM chats c
WHERE (SELECT count(*) FROM holds h WHERE h.chat_id = c.id AND h.released_at IS NULL)
      <> (c.chat_state = 'assigned')::int
   OR (c.chat_state = 'assigned' AND NOT EXISTS (
        SELECT 1 FROM holds h WHERE h.chat_id = c.id AND h.released_at IS NULL
                                AND h.operator_id = c.assigned_operator_id))
UNION ALL
-- 5. completed <=> inactive; a state the machine does not know
SELECT 'bad_state', c.id, NULL::bigint, format('state %s, is_active %s', c.chat_state, c.is_active)
FROM chats c
WHERE (c.chat_state = 'completed') <> (NOT c.is_active)
   OR c.chat_state NOT IN ('waiting_assignment', 'assigned', 'waiting_real_user_reply', 'completed')
UNION ALL
-- 6. no chat lost: every chat has its creation event, every chat with events still exists
SELECT 'lost_chat', c.id, NULL::bigint, 'no creation event'
FROM chats c
WHERE NOT EXISTS (SELECT 1 FROM walk w WHERE w.chat_id = c.id AND w.n = 1 AND w.from_state IS NULL)
UNION ALL
-- 7. each chat's events are a legal walk of the state machine ending in its current state
SELECT 'illegal_walk', w.chat_id, NULL::bigint,
       format('event %s: %s -%s-> %s after %s', w.id, w.from_state, w.event, w.to_state, w.prev_to)
FROM walk w
WHERE w.n > 1 AND (w.from_state IS DISTINCT FROM w.prev_to
                   OR NOT EXISTS (SELECT 1 FROM chat_transitions t
                                  WHERE t.state = w.from_state AND t.event = w.event
                                    AND t.next_state = w.to_state))
UNION ALL
SELECT 'walk_not_current', w.chat_id, NULL::bigint,
       format('last event ends in %s, chat is %s', w.to_state, c.chat_state)
FROM walk w JOIN chats c ON c.id = w.chat_id
WHERE w.n_back = 1 AND w.to_state IS DISTINCT FROM c.chat_state
ORDER BY 1, 2

-- ---------------------------------------------------------------------------------------
-- schemas and migrations (chatlab.db.migrate)
-- ---------------------------------------------------------------------------------------

-- name: schema_exists
SELECT 1 FROM pg_namespace WHERE nspname = %(schema)s

-- name: migrations_table_exists
SELECT 1 FROM information_schema.tables WHERE table_schema = %(schema)s AND table_name = 'schema_migrations'

-- name: applied_migrations
SELECT version, name, checksum FROM {schema}.schema_migrations ORDER BY version

-- name: migration_lock
-- Serialises concurrent migrations of one database (until the transaction ends).
SELECT pg_advisory_xact_lock(%(key)s)

-- name: create_schema
CREATE SCHEMA IF NOT EXISTS {schema}

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
    version    integer PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)

-- name: applied_migration
SELECT name, checksum FROM {schema}.schema_migrations WHERE version = %(version)s

-- name: record_migration
INSERT INTO {schema}.schema_migrations (version, name, checksum) VALUES (%(version)s, %(name)s, %(checksum)s)

-- name: drop_schema
DROP SCHEMA IF EXISTS {schema} CASCADE

-- ---------------------------------------------------------------------------------------
-- probes (benchmarks/probes)
-- ---------------------------------------------------------------------------------------

-- name: probe_sleep
-- The server sleeps; the client only waits: how many Locust users wait at once?
SELECT pg_sleep(%(seconds)s)

-- ---------------------------------------------------------------------------------------
-- the seed's tables as a team's production history (chatlab calibrate, chatlab db export)
-- ---------------------------------------------------------------------------------------

-- name: seed_table_columns
-- Which of the seed's tables (and which of their columns) the schema has: checked before
-- anything is read, so a missing one is named in one line.
SELECT table_name::text, column_name::text
FROM information_schema.columns
WHERE table_schema = %(schema)s AND table_name = ANY(%(tables)s)
ORDER BY table_name, ordinal_position

-- name: iso_timestamps
-- Timestamps as ISO 8601 in UTC on this connection, whatever the server's DateStyle/TimeZone
-- (an export must read back the same instants everywhere).
SET DateStyle = ISO; SET TimeZone = 'UTC'

-- name: copy_table_out
-- One whole table as CSV with a header (the format chatlab db export writes and chatlab
-- calibrate reads back, so a database and its export are read by the same parser).
COPY (SELECT * FROM {schema}.{table} ORDER BY 1) TO STDOUT WITH (FORMAT csv, HEADER true)
