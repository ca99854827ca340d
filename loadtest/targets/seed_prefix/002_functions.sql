-- 002: the PRE-FIX application's functions (the seed's bug, reproduced on purpose).
--
-- When an operator replies, the chat is unassigned (assigned_operator_id = NULL, its
-- chat_assignments row released with reason 'operator_reply') but it stays in the queue:
-- assign_chat_to_operator takes the oldest open chat with no operator, and does NOT
-- exclude the operator who just answered it — so that operator gets the same chat back.
--
-- Conventions (shared with the seed_fix target):
-- * every timestamp is clock_timestamp(), taken after the locks were acquired, so rows
--   written inside one transaction are ordered and history intervals never overlap;
-- * every function pins search_path (SET search_path FROM CURRENT = the schema it was
--   created in), so it resolves its tables there whatever the caller's search_path;
-- * lock order is always operator row, then chat rows, then chat_assignments rows
--   (several operators: by id), so concurrent calls cannot deadlock each other;
-- * errors: unknown operator, or unknown/closed chat -> SQLSTATE P0002 (no_data_found);
--   an operator acting on a chat it does not hold -> SQLSTATE 42501 (insufficient_privilege).

-- Internal: close the open chat_assignments row of a chat (0 or 1 rows).
CREATE FUNCTION close_open_assignment(p_chat_id uuid, p_reason text, p_at timestamptz)
RETURNS integer
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_rows integer;
BEGIN
    UPDATE chat_assignments
       SET released_at = p_at, release_reason = p_reason
     WHERE chat_id = p_chat_id AND released_at IS NULL;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    RETURN v_rows;
END
$$;

-- Internal: release one chat the caller has locked (operator row, then chat row).
CREATE FUNCTION release_held_chat(p_chat_id uuid, p_reason text)
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now timestamptz := clock_timestamp();
BEGIN
    PERFORM close_open_assignment(p_chat_id, p_reason, v_now);
    UPDATE chats SET assigned_operator_id = NULL, updated_at = v_now WHERE id = p_chat_id;
END
$$;

-- A real user writes: p_chat_id NULL opens a new chat, otherwise the message goes to
-- that open chat of the user (a held chat stays held).  Returns the chat id.
CREATE FUNCTION send_real_user_message(p_real_user_id uuid, p_body text, p_chat_id uuid DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now     timestamptz;
    v_chat_id uuid;
BEGIN
    IF p_chat_id IS NULL THEN
        v_now := clock_timestamp();
        INSERT INTO chats (real_user_id, created_at, updated_at, last_user_message_at)
        VALUES (p_real_user_id, v_now, v_now, v_now)
        RETURNING id INTO v_chat_id;
    ELSE
        SELECT id INTO v_chat_id
          FROM chats
         WHERE id = p_chat_id AND real_user_id = p_real_user_id AND is_active
           FOR NO KEY UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no open chat % for real user %', p_chat_id, p_real_user_id
                USING ERRCODE = 'no_data_found';
        END IF;
        v_now := clock_timestamp();
        UPDATE chats SET last_user_message_at = v_now, updated_at = v_now WHERE id = v_chat_id;
    END IF;
    INSERT INTO messages (chat_id, sender_type, sender_id, body, created_at)
    VALUES (v_chat_id, 'real_user', p_real_user_id, p_body, v_now);
    RETURN v_chat_id;
END
$$;

-- The seed's assign function, pre-fix: the oldest open chat without an operator (by
-- coalesce(last_user_message_at, created_at)), no exclusion of the last operator.
-- NULL when the operator is offline, at max_chats, or nothing is eligible.
CREATE FUNCTION assign_chat_to_operator(p_operator_id uuid)
RETURNS uuid
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_op      operators%ROWTYPE;
    v_held    integer;
    v_chat_id uuid;
    v_now     timestamptz;
BEGIN
    -- Serialises concurrent requests of one operator: the capacity count below is taken
    -- after the lock (READ COMMITTED: a new snapshot per statement).
    SELECT * INTO v_op FROM operators WHERE id = p_operator_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown operator %', p_operator_id USING ERRCODE = 'no_data_found';
    END IF;
    IF NOT v_op.is_online THEN
        RETURN NULL;
    END IF;
    SELECT count(*) INTO v_held FROM chats WHERE assigned_operator_id = p_operator_id AND is_active;
    IF v_held >= v_op.max_chats THEN
        RETURN NULL;
    END IF;

    SELECT id INTO v_chat_id
      FROM chats
     WHERE is_active AND assigned_operator_id IS NULL
     ORDER BY coalesce(last_user_message_at, created_at), id
     LIMIT 1
       FOR NO KEY UPDATE SKIP LOCKED;
    IF v_chat_id IS NULL THEN
        RETURN NULL;
    END IF;

    v_now := clock_timestamp();
    UPDATE chats SET assigned_operator_id = p_operator_id, updated_at = v_now WHERE id = v_chat_id;
    UPDATE operators SET last_activity_at = v_now WHERE id = p_operator_id;
    INSERT INTO chat_assignments (chat_id, operator_id, assigned_at)
    VALUES (v_chat_id, p_operator_id, v_now);
    RETURN v_chat_id;
END
$$;

-- What an operator's reply and hand-back both check first, in the lock order every function keeps:
-- the operator row (unknown: P0002), then the chat (not open: P0002; held by someone else: 42501).
CREATE FUNCTION lock_held_chat(p_operator_id uuid, p_chat_id uuid)
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_holder uuid;
BEGIN
    PERFORM 1 FROM operators WHERE id = p_operator_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown operator %', p_operator_id USING ERRCODE = 'no_data_found';
    END IF;
    SELECT assigned_operator_id INTO v_holder FROM chats WHERE id = p_chat_id AND is_active FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no open chat %', p_chat_id USING ERRCODE = 'no_data_found';
    END IF;
    IF v_holder IS DISTINCT FROM p_operator_id THEN
        RAISE EXCEPTION 'operator % does not hold chat %', p_operator_id, p_chat_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

-- The operator answers a chat it holds; pre-fix, the chat is simply unassigned (and so
-- immediately assignable again — the bug).  Returns the message id.
CREATE FUNCTION send_operator_message(p_operator_id uuid, p_chat_id uuid, p_body text)
RETURNS uuid
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_msg_id uuid;
    v_now    timestamptz;
BEGIN
    PERFORM lock_held_chat(p_operator_id, p_chat_id);

    v_now := clock_timestamp();
    INSERT INTO messages (chat_id, sender_type, sender_id, body, created_at)
    VALUES (p_chat_id, 'operator', p_operator_id, p_body, v_now)
    RETURNING id INTO v_msg_id;
    PERFORM close_open_assignment(p_chat_id, 'operator_reply', v_now);
    UPDATE chats SET assigned_operator_id = NULL, updated_at = v_now WHERE id = p_chat_id;
    UPDATE operators SET last_activity_at = v_now WHERE id = p_operator_id;
    RETURN v_msg_id;
END
$$;

-- The operator hands a chat it holds back to the queue.
CREATE FUNCTION unassign_chat(p_operator_id uuid, p_chat_id uuid)
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM lock_held_chat(p_operator_id, p_chat_id);
    PERFORM release_held_chat(p_chat_id, 'unassign');
END
$$;

-- Close an open chat (releasing its hold, if any, with reason 'end').
CREATE FUNCTION end_chat(p_chat_id uuid)
RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_now timestamptz;
BEGIN
    PERFORM 1 FROM chats WHERE id = p_chat_id AND is_active FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no open chat %', p_chat_id USING ERRCODE = 'no_data_found';
    END IF;
    v_now := clock_timestamp();
    PERFORM close_open_assignment(p_chat_id, 'end', v_now);
    UPDATE chats SET is_active = false, assigned_operator_id = NULL, updated_at = v_now WHERE id = p_chat_id;
END
$$;

-- Set an operator on- or offline; going offline releases every chat it holds
-- (reason 'operator_offline').  Returns how many chats were released.
CREATE FUNCTION set_operator_online(p_operator_id uuid, p_online boolean)
RETURNS integer
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_chat_id  uuid;
    v_released integer := 0;
BEGIN
    PERFORM 1 FROM operators WHERE id = p_operator_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown operator %', p_operator_id USING ERRCODE = 'no_data_found';
    END IF;
    UPDATE operators SET is_online = p_online WHERE id = p_operator_id;
    IF p_online THEN
        RETURN 0;
    END IF;
    FOR v_chat_id IN
        SELECT id FROM chats WHERE assigned_operator_id = p_operator_id AND is_active
         ORDER BY id FOR NO KEY UPDATE
    LOOP
        PERFORM release_held_chat(v_chat_id, 'operator_offline');
        v_released := v_released + 1;
    END LOOP;
    RETURN v_released;
END
$$;

-- The seed's idle-detection cron: operators whose last activity is older than
-- p_idle_after_seconds release the chats they hold (reason 'idle').  Returns the count.
CREATE FUNCTION release_idle_operator_chats(p_idle_after_seconds double precision)
RETURNS integer
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_op_id    uuid;
    v_chat_id  uuid;
    v_released integer := 0;
BEGIN
    FOR v_op_id IN
        SELECT DISTINCT o.id
          FROM operators o JOIN chats c ON c.assigned_operator_id = o.id AND c.is_active
         WHERE o.last_activity_at IS NULL
            OR o.last_activity_at <= clock_timestamp() - make_interval(secs => p_idle_after_seconds)
         ORDER BY o.id
    LOOP
        -- Re-check under the lock: the operator may have acted since.
        PERFORM 1 FROM operators
         WHERE id = v_op_id
           AND (last_activity_at IS NULL
                OR last_activity_at <= clock_timestamp() - make_interval(secs => p_idle_after_seconds))
           FOR UPDATE;
        CONTINUE WHEN NOT FOUND;
        FOR v_chat_id IN
            SELECT id FROM chats WHERE assigned_operator_id = v_op_id AND is_active
             ORDER BY id FOR NO KEY UPDATE
        LOOP
            PERFORM release_held_chat(v_chat_id, 'idle');
            v_released := v_released + 1;
        END LOOP;
    END LOOP;
    RETURN v_released;
END
$$;

-- Chats held (open chat_assignments row) for longer than p_stuck_after_seconds are
-- released (reason 'stuck').  Returns the count.
CREATE FUNCTION release_stuck_chats(p_stuck_after_seconds double precision)
RETURNS integer
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_cand     record;
    v_since    timestamptz;
    v_released integer := 0;
BEGIN
    FOR v_cand IN
        SELECT c.id AS chat_id, c.assigned_operator_id AS operator_id
          FROM chats c
          LEFT JOIN chat_assignments a
                 ON a.chat_id = c.id AND a.released_at IS NULL AND a.operator_id = c.assigned_operator_id
         WHERE c.is_active AND c.assigned_operator_id IS NOT NULL
           AND coalesce(a.assigned_at, '-infinity')
               <= clock_timestamp() - make_interval(secs => p_stuck_after_seconds)
         ORDER BY c.assigned_operator_id, c.id
    LOOP
        PERFORM 1 FROM operators WHERE id = v_cand.operator_id FOR UPDATE;
        PERFORM 1 FROM chats
         WHERE id = v_cand.chat_id AND is_active AND assigned_operator_id = v_cand.operator_id
           FOR NO KEY UPDATE;
        CONTINUE WHEN NOT FOUND;
        -- Re-check the age under the lock: the chat may have been released and taken again.
        SELECT min(assigned_at) INTO v_since
          FROM chat_assignments
         WHERE chat_id = v_cand.chat_id AND released_at IS NULL AND operator_id = v_cand.operator_id;
        CONTINUE WHEN coalesce(v_since, '-infinity')
                      > clock_timestamp() - make_interval(secs => p_stuck_after_seconds);
        PERFORM release_held_chat(v_cand.chat_id, 'stuck');
        v_released := v_released + 1;
    END LOOP;
    RETURN v_released;
END
$$;
