-- 016 (seed): monitoring and verification: stuck chats, queue status, state summary,
-- and the checks `chatlab db verify` prints (the seed's scripts/verify-chat-fix.sql).

-- Chats held longer than p_hours (the seed's "stuck" definition), oldest first.
CREATE FUNCTION detect_stuck_chats(p_hours double precision DEFAULT 1)
RETURNS TABLE (chat_id bigint, operator_id bigint, assigned_at timestamptz, stuck_seconds double precision)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now timestamptz := chatlab_now();
BEGIN
    IF p_hours IS NULL OR p_hours < 0 OR p_hours = 'NaN'::float8 OR p_hours = 'Infinity'::float8 THEN
        RAISE EXCEPTION 'hours must be a finite number >= 0, got %', coalesce(p_hours::text, 'NULL')
            USING ERRCODE = 'CL006';
    END IF;
    RETURN QUERY
        SELECT c.id, c.assigned_operator_id, a.assigned_at,
               extract(epoch FROM v_now - a.assigned_at)::double precision
        FROM chats c
        JOIN chat_assignments a ON a.chat_id = c.id AND a.released_at IS NULL
        WHERE c.chat_state = 'assigned'
          AND a.assigned_at < v_now - make_interval(secs => p_hours * 3600)
        ORDER BY a.assigned_at, c.id;
END
$$;

-- One row: how the queue and the operators look right now.
CREATE FUNCTION get_assignment_queue_status()
RETURNS TABLE (
    waiting_chats            bigint,
    waiting_real_user_reply  bigint,
    assigned_chats           bigint,
    completed_chats          bigint,
    oldest_waiting_since     timestamptz,
    longest_wait_seconds     double precision,
    average_wait_seconds     double precision,
    online_operators         bigint,
    operators_with_capacity  bigint,
    free_capacity            bigint
)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    WITH now_ AS (SELECT chatlab_now() AS t),
    queue AS (
        SELECT count(*) AS n, min(waiting_since) AS oldest,
               avg(extract(epoch FROM (SELECT t FROM now_) - waiting_since))::double precision AS avg_wait
        FROM chats WHERE chat_state = 'waiting_assignment'
    ),
    states AS (
        SELECT count(*) FILTER (WHERE chat_state = 'waiting_real_user_reply') AS wrur,
               count(*) FILTER (WHERE chat_state = 'assigned') AS assigned,
               count(*) FILTER (WHERE chat_state = 'completed') AS completed
        FROM chats
    ),
    ops AS (
        SELECT o.id, o.max_chats,
               (SELECT count(*) FROM chats c
                WHERE c.chat_state = 'assigned' AND c.assigned_operator_id = o.id) AS active
        FROM operators o WHERE o.is_online
    )
    SELECT queue.n, states.wrur, states.assigned, states.completed, queue.oldest,
           extract(epoch FROM (SELECT t FROM now_) - queue.oldest)::double precision,
           queue.avg_wait,
           (SELECT count(*) FROM ops),
           (SELECT count(*) FROM ops WHERE active < max_chats),
           (SELECT coalesce(sum(greatest(max_chats - active, 0)), 0)::bigint FROM ops)
    FROM queue, states
$$;

-- Chats per state (all four states, zero included), and how old the oldest is.
CREATE VIEW chat_state_summary AS
    SELECT s.chat_state,
           count(c.id)                                  AS chat_count,
           count(c.id) FILTER (WHERE c.is_active)       AS active_count,
           min(c.waiting_since)                         AS oldest_waiting_since,
           max(c.updated_at)                            AS last_change_at
    FROM (VALUES (1, 'waiting_assignment'), (2, 'assigned'),
                 (3, 'waiting_real_user_reply'), (4, 'completed')) AS s (ord, chat_state)
    LEFT JOIN chats c ON c.chat_state = s.chat_state
    GROUP BY s.ord, s.chat_state
    ORDER BY s.ord;

-- The seed's verification script as one function: every check, pass or fail, with detail.
-- Structure (columns, functions, view, indexes, pinned search_path) and data integrity
-- (the invariants the constraints promise, checked again from the data and history).
CREATE FUNCTION chat_state_verification()
RETURNS TABLE (check_name text, passed boolean, detail text)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_schema  text := current_schema();
    v_missing text;
    v_n       bigint;
BEGIN
    -- 1. columns of the fix
    SELECT string_agg(col, ', ') INTO v_missing
    FROM unnest(ARRAY['chat_state', 'assigned_operator_id', 'last_operator_id',
                      'operator_replied_at', 'waiting_since', 'is_active']) AS col
    WHERE NOT EXISTS (SELECT 1 FROM information_schema.columns i
                      WHERE i.table_schema = v_schema AND i.table_name = 'chats' AND i.column_name = col);
    check_name := 'chats has the state columns'; passed := v_missing IS NULL;
    detail := coalesce('missing: ' || v_missing, 'chat_state, assigned/last operator, replied_at, waiting_since, is_active');
    RETURN NEXT;

    -- 2. functions of 015/016
    SELECT string_agg(fn, ', ') INTO v_missing
    FROM unnest(ARRAY['assign_chat_to_operator', 'operator_message', 'real_user_message', 'unassign_chat',
                      'end_chat', 'release_idle_operator_chats', 'release_and_reassign_chat',
                      'detect_stuck_chats', 'get_assignment_queue_status', 'chat_next_state']) AS fn
    WHERE NOT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                      WHERE n.nspname = v_schema AND p.proname = fn);
    check_name := 'assignment and monitoring functions exist'; passed := v_missing IS NULL;
    detail := coalesce('missing: ' || v_missing, '10 functions present');
    RETURN NEXT;

    -- 3. view and queue index
    check_name := 'chat_state_summary view exists';
    passed := EXISTS (SELECT 1 FROM pg_views WHERE schemaname = v_schema AND viewname = 'chat_state_summary');
    detail := CASE WHEN passed THEN 'present' ELSE 'missing' END;
    RETURN NEXT;
    check_name := 'partial index on the waiting queue exists';
    passed := EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = v_schema AND indexname = 'chats_waiting_queue_idx');
    detail := CASE WHEN passed THEN 'chats_waiting_queue_idx (waiting_since, id) WHERE waiting_assignment' ELSE 'missing' END;
    RETURN NEXT;

    -- 4. security: every function of the schema pins search_path
    SELECT string_agg(p.proname, ', ' ORDER BY p.proname) INTO v_missing
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = v_schema
      AND NOT EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, '{}')) cfg WHERE cfg LIKE 'search_path=%');
    check_name := 'every function pins search_path'; passed := v_missing IS NULL;
    detail := coalesce('unpinned: ' || v_missing, 'all pinned');
    RETURN NEXT;

    -- 5. the state machine table matches the Python one in size (content: tests)
    SELECT count(*) INTO v_n FROM chat_transitions;
    check_name := 'transition table loaded'; passed := v_n = 12;
    detail := format('%s transitions (expected 12)', v_n);
    RETURN NEXT;

    -- 6. data: assigned <=> operator, completed <=> inactive
    SELECT count(*) INTO v_n FROM chats
    WHERE (chat_state = 'assigned') <> (assigned_operator_id IS NOT NULL)
       OR (chat_state = 'completed') <> (NOT is_active);
    check_name := 'no chat in an invalid state'; passed := v_n = 0;
    detail := format('%s invalid chats', v_n);
    RETURN NEXT;

    -- 7. data: the fix's promise — a replied chat is not assignable and has a last operator
    SELECT count(*) INTO v_n FROM chats
    WHERE chat_state = 'waiting_real_user_reply' AND (last_operator_id IS NULL OR operator_replied_at IS NULL);
    check_name := 'replied chats record their operator'; passed := v_n = 0;
    detail := format('%s waiting_real_user_reply chats without last operator or reply time', v_n);
    RETURN NEXT;

    -- 8. history agrees with the current state: an assigned chat has exactly one open row, by its holder
    SELECT count(*) INTO v_n FROM chats c
    WHERE (c.chat_state = 'assigned') IS DISTINCT FROM EXISTS (
              SELECT 1 FROM chat_assignments a
              WHERE a.chat_id = c.id AND a.released_at IS NULL AND a.operator_id = c.assigned_operator_id)
       OR (SELECT count(*) FROM chat_assignments a WHERE a.chat_id = c.id AND a.released_at IS NULL) > 1;
    check_name := 'assignment history matches chat state'; passed := v_n = 0;
    detail := format('%s chats whose open history row disagrees', v_n);
    RETURN NEXT;

    -- 9. history: no chat ever held by two operators at once
    SELECT count(*) INTO v_n FROM chat_assignments a
    JOIN chat_assignments b ON b.chat_id = a.chat_id AND b.id > a.id
    WHERE tstzrange(a.assigned_at, coalesce(a.released_at, 'infinity'), '[)')
       && tstzrange(b.assigned_at, coalesce(b.released_at, 'infinity'), '[)');
    check_name := 'no overlapping assignments'; passed := v_n = 0;
    detail := format('%s overlapping pairs of history rows', v_n);
    RETURN NEXT;

    -- 10. capacity: nobody holds more chats than allowed, offline operators hold none
    SELECT count(*) INTO v_n FROM operators o
    WHERE (SELECT count(*) FROM chats c WHERE c.chat_state = 'assigned' AND c.assigned_operator_id = o.id)
          > CASE WHEN o.is_online THEN o.max_chats ELSE 0 END;
    check_name := 'operators within capacity'; passed := v_n = 0;
    detail := format('%s operators over capacity (offline ones must hold nothing)', v_n);
    RETURN NEXT;
END
$$;
