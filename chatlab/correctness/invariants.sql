-- Invariants the chat system must keep after any amount of concurrent load or injected
-- faults.  One row per violation: (check, chat_id, operator_id, detail).  No rows = all hold.
-- Runs with search_path set to the schema under test (chatlab.correctness.invariants).
WITH holds AS (
    SELECT id, chat_id, operator_id, released_at,
           tstzrange(assigned_at, coalesce(released_at, 'infinity'::timestamptz), '[)') AS span
    FROM chat_assignments
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
-- 2. an operator holding more chats than max_chats at the start of one of its holds
SELECT 'over_capacity', a.chat_id, a.operator_id,
       format('%s holds at once, max_chats %s', x.held, o.max_chats)
FROM holds a JOIN operators o ON o.id = a.operator_id
CROSS JOIN LATERAL (SELECT count(*) AS held FROM holds b
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
