-- 016: monitoring and verification (the seed's migration 016).
--
--   SELECT * FROM get_assignment_queue_status();      -- the queue right now
--   SELECT * FROM detect_stuck_chats(1);              -- held > 1 hour, or inconsistent
--   SELECT release_and_reassign_chat(id, 'manual_fix');
--   SELECT * FROM verify_chat_state_management();     -- every check passed?
--   SELECT release_stuck_chats(3600);                 -- the cron: release held > 1 hour

-- One row: chats per state, the queue's oldest wait, the operators who can take work.
CREATE OR REPLACE FUNCTION get_assignment_queue_status()
RETURNS TABLE (
    waiting_assignment_count      bigint,
    assigned_count                bigint,
    waiting_real_user_reply_count bigint,
    completed_count               bigint,
    oldest_waiting_since          timestamptz,
    longest_wait_seconds          double precision,
    online_operators              bigint,
    available_operators           bigint,
    free_slots                    bigint
)
LANGUAGE sql
SET search_path FROM CURRENT
AS $$
    WITH t AS (SELECT clock_timestamp() AS now_),
    c AS (
        SELECT count(*) FILTER (WHERE is_active AND chat_state = 'waiting_assignment')      AS waiting,
               count(*) FILTER (WHERE is_active AND chat_state = 'assigned')                AS assigned,
               count(*) FILTER (WHERE is_active AND chat_state = 'waiting_real_user_reply') AS replied,
               count(*) FILTER (WHERE chat_state = 'completed')                             AS completed,
               min(waiting_since) FILTER (WHERE is_active AND chat_state = 'waiting_assignment') AS oldest
          FROM chats
    ),
    o AS (
        SELECT op.is_online, op.max_chats,
               (SELECT count(*) FROM chats h WHERE h.assigned_operator_id = op.id AND h.is_active) AS held
          FROM operators op
    ),
    ops AS (
        SELECT count(*) FILTER (WHERE is_online)                    AS online,
               count(*) FILTER (WHERE is_online AND held < max_chats) AS available,
               coalesce(sum(greatest(max_chats - held, 0)) FILTER (WHERE is_online), 0)::bigint AS free
          FROM o
    )
    SELECT c.waiting, c.assigned, c.replied, c.completed, c.oldest,
           extract(epoch FROM t.now_ - c.oldest)::double precision,
           ops.online, ops.available, ops.free
      FROM c, ops, t
$$;

-- Open chats held for at least p_hours (by the open chat_assignments row), plus held or
-- "assigned" chats whose columns disagree (issue says which), oldest hold first.
CREATE OR REPLACE FUNCTION detect_stuck_chats(p_hours numeric)
RETURNS TABLE (
    chat_id              uuid,
    chat_state           text,
    assigned_operator_id uuid,
    last_operator_id     uuid,
    held_since           timestamptz,
    hours_held           numeric,
    issue                text
)
LANGUAGE sql
SET search_path FROM CURRENT
AS $$
    WITH t AS (SELECT clock_timestamp() AS now_),
    held AS (
        SELECT c.id, c.chat_state, c.assigned_operator_id, c.last_operator_id,
               (SELECT min(a.assigned_at)
                  FROM chat_assignments a
                 WHERE a.chat_id = c.id AND a.released_at IS NULL
                   AND a.operator_id = c.assigned_operator_id) AS held_since
          FROM chats c
         WHERE c.is_active AND (c.assigned_operator_id IS NOT NULL OR c.chat_state = 'assigned')
    )
    SELECT h.id, h.chat_state, h.assigned_operator_id, h.last_operator_id, h.held_since,
           round(extract(epoch FROM t.now_ - h.held_since) / 3600, 4),
           CASE WHEN h.assigned_operator_id IS NULL THEN 'assigned_without_operator'
                WHEN h.chat_state <> 'assigned'     THEN 'operator_without_assigned_state'
                WHEN h.held_since IS NULL           THEN 'held_without_assignment_row'
                ELSE 'held_too_long'
           END
      FROM held h, t
     WHERE h.assigned_operator_id IS NULL
        OR h.chat_state <> 'assigned'
        OR h.held_since IS NULL
        OR h.held_since <= t.now_ - make_interval(secs => (p_hours * 3600)::double precision)
     ORDER BY h.held_since NULLS FIRST, h.id
$$;

-- Internal: release a chat if it is held (and, with p_held_before, only if its hold
-- began at or before that moment): back to waiting_assignment for someone else
-- (last_operator_id = the releasing holder).  A chat left 'assigned' without an
-- operator is put back in the queue too (only without p_held_before).  Returns true if
-- released, false if not held, NULL for an unknown or closed chat.  Never raises, so a
-- cron looping over many chats survives one that closed meanwhile.
CREATE OR REPLACE FUNCTION release_chat_if_held(p_chat_id uuid, p_reason text, p_held_before timestamptz)
RETURNS boolean
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_op     uuid;
    v_active boolean;
    v_state  text;
    v_since  timestamptz;
BEGIN
    FOR v_try IN 1..5 LOOP
        SELECT c.assigned_operator_id, c.is_active INTO v_op, v_active FROM chats c WHERE c.id = p_chat_id;
        IF NOT FOUND OR NOT v_active THEN
            RETURN NULL;
        END IF;
        IF v_op IS NULL THEN
            SELECT c.chat_state INTO v_state
              FROM chats c
             WHERE c.id = p_chat_id AND c.is_active AND c.assigned_operator_id IS NULL
               FOR NO KEY UPDATE;
            CONTINUE WHEN NOT FOUND;  -- closed or taken meanwhile: look again
            IF v_state <> 'assigned' OR p_held_before IS NOT NULL THEN
                RETURN false;
            END IF;
            PERFORM release_held_chat(p_chat_id, p_reason, NULL);
            RETURN true;
        END IF;
        -- Lock order: the holder's operator row, then the chat.
        PERFORM 1 FROM operators o WHERE o.id = v_op FOR UPDATE;
        PERFORM 1 FROM chats c
         WHERE c.id = p_chat_id AND c.is_active AND c.assigned_operator_id = v_op
           FOR NO KEY UPDATE;
        CONTINUE WHEN NOT FOUND;  -- released or handed over meanwhile: look again
        IF p_held_before IS NOT NULL THEN
            SELECT min(a.assigned_at) INTO v_since
              FROM chat_assignments a
             WHERE a.chat_id = p_chat_id AND a.released_at IS NULL AND a.operator_id = v_op;
            IF coalesce(v_since, '-infinity') > p_held_before THEN
                RETURN false;
            END IF;
        END IF;
        PERFORM release_held_chat(p_chat_id, p_reason, v_op);
        RETURN true;
    END LOOP;
    RETURN false;
END
$$;

-- The seed's manual fix for a stuck chat: release it from whoever holds it and put it
-- back in the queue (for another operator).  p_reason is the release_reason (NULL ->
-- 'manual').  Returns true if the chat was released, false if nobody held it; raises
-- P0002 for an unknown or closed chat.
CREATE OR REPLACE FUNCTION release_and_reassign_chat(p_chat_id uuid, p_reason text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_released boolean;
BEGIN
    v_released := release_chat_if_held(p_chat_id, coalesce(p_reason, 'manual'), NULL);
    IF v_released IS NULL THEN
        RAISE EXCEPTION 'no open chat %', p_chat_id USING ERRCODE = 'no_data_found';
    END IF;
    RETURN v_released;
END
$$;

-- The stuck-chat cron: every chat held for longer than p_stuck_after_seconds is
-- released (reason 'stuck') through detect_stuck_chats / the release above.
-- Returns the count.
CREATE OR REPLACE FUNCTION release_stuck_chats(p_stuck_after_seconds double precision)
RETURNS integer
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_cutoff   timestamptz := clock_timestamp() - make_interval(secs => p_stuck_after_seconds);
    v_chat     record;
    v_released integer := 0;
BEGIN
    FOR v_chat IN
        SELECT d.chat_id
          FROM detect_stuck_chats(p_stuck_after_seconds::numeric / 3600) d
         WHERE d.assigned_operator_id IS NOT NULL
           AND coalesce(d.held_since, '-infinity') <= v_cutoff
         ORDER BY d.assigned_operator_id, d.chat_id
    LOOP
        IF release_chat_if_held(v_chat.chat_id, 'stuck', v_cutoff) THEN
            v_released := v_released + 1;
        END IF;
    END LOOP;
    RETURN v_released;
END
$$;

-- The seed's verification script as a function: one row per check.
CREATE OR REPLACE FUNCTION verify_chat_state_management()
RETURNS TABLE (check_name text, passed boolean, failing_rows bigint)
LANGUAGE sql
SET search_path FROM CURRENT
AS $$
    WITH checks (ord, check_name, failing_rows) AS (
        SELECT 1, 'migration 014: chats has chat_state, last_operator_id, operator_replied_at, waiting_since',
               4 - (SELECT count(*) FROM pg_attribute
                     WHERE attrelid = to_regclass('chats') AND NOT attisdropped
                       AND attname IN ('chat_state', 'last_operator_id', 'operator_replied_at', 'waiting_since'))
        UNION ALL
        SELECT 2, 'migration 014: chat_state_summary view exists',
               CASE WHEN to_regclass('chat_state_summary') IS NULL THEN 1 ELSE 0 END
        UNION ALL
        SELECT 3, 'migrations 015/016: functions exist',
               (SELECT count(*) FROM unnest(ARRAY[
                    'send_real_user_message(uuid,text,uuid)', 'assign_chat_to_operator(uuid)',
                    'send_operator_message(uuid,uuid,text)', 'unassign_chat(uuid,uuid)',
                    'end_chat(uuid)', 'set_operator_online(uuid,boolean)',
                    'release_idle_operator_chats(double precision)',
                    'release_stuck_chats(double precision)', 'get_assignment_queue_status()',
                    'detect_stuck_chats(numeric)', 'release_and_reassign_chat(uuid,text)']) AS f (sig)
                 WHERE to_regprocedure(f.sig) IS NULL)
        UNION ALL
        SELECT 4, 'completed exactly when closed',
               (SELECT count(*) FROM chats WHERE (chat_state = 'completed') <> (NOT is_active))
        UNION ALL
        SELECT 5, 'assigned exactly when an operator holds the chat',
               (SELECT count(*) FROM chats
                 WHERE is_active AND (chat_state = 'assigned') <> (assigned_operator_id IS NOT NULL))
        UNION ALL
        SELECT 6, 'every held chat has exactly one open assignment row, of its holder',
               (SELECT count(*) FROM chats c
                 WHERE c.is_active AND c.assigned_operator_id IS NOT NULL
                   AND (SELECT count(*) FROM chat_assignments a
                         WHERE a.chat_id = c.id AND a.released_at IS NULL
                           AND a.operator_id = c.assigned_operator_id) <> 1)
        UNION ALL
        SELECT 7, 'no open assignment row without the hold',
               (SELECT count(*) FROM chat_assignments a JOIN chats c ON c.id = a.chat_id
                 WHERE a.released_at IS NULL
                   AND (NOT c.is_active OR c.assigned_operator_id IS DISTINCT FROM a.operator_id))
        UNION ALL
        SELECT 8, 'released assignment rows have a release_reason',
               (SELECT count(*) FROM chat_assignments
                 WHERE released_at IS NOT NULL AND release_reason IS NULL)
        UNION ALL
        SELECT 9, 'no operator above max_chats',
               (SELECT count(*) FROM operators o
                 WHERE (SELECT count(*) FROM chats c
                         WHERE c.assigned_operator_id = o.id AND c.is_active) > o.max_chats)
        UNION ALL
        SELECT 10, 'offline operators hold no chat',
               (SELECT count(*) FROM chats c JOIN operators o ON o.id = c.assigned_operator_id
                 WHERE c.is_active AND NOT o.is_online)
        UNION ALL
        SELECT 11, 'waiting chats have waiting_since',
               (SELECT count(*) FROM chats
                 WHERE is_active AND chat_state = 'waiting_assignment' AND waiting_since IS NULL)
        UNION ALL
        SELECT 12, 'replied chats have last_operator_id and operator_replied_at',
               (SELECT count(*) FROM chats
                 WHERE is_active AND chat_state = 'waiting_real_user_reply'
                   AND (last_operator_id IS NULL OR operator_replied_at IS NULL))
    )
    SELECT check_name, failing_rows = 0, failing_rows::bigint FROM checks ORDER BY ord
$$;
