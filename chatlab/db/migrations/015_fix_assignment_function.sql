-- 015 (seed): the chat system's operations (docs/semantics.md) and the assign function with
-- every policy of sim/policies.py.  Monitoring and verification are in 016, access rights
-- in 017, the lab's epoch in 018.
--
-- Conventions
-- * Every function pins search_path (SET search_path FROM CURRENT = the schema it was
--   migrated into), so a caller's search_path can never redirect a table or function.
-- * Bad input raises an own SQLSTATE of class CL and changes nothing (a raise aborts the
--   statement, so every write before it is rolled back):
--     CL001 unknown operator       CL002 unknown chat          CL003 not your chat
--     CL004 illegal transition     CL005 chat completed        CL006 invalid argument
--     CL007 unknown policy         CL009 chat not assigned (release of a chat nobody holds)
--   chatlab/db/errors.py maps each to the sim/errors.py class ChatSystem raises for it.
-- * Locks are always taken operator row first, then chat rows, so the functions cannot
--   deadlock each other (idle release and going offline also lock operator, then chats).
--   Row locks are FOR NO KEY UPDATE, never FOR UPDATE: foreign-key checks (chats ->
--   operators, history -> chats) take KEY SHARE locks, which FOR UPDATE would block; a
--   release that sets last_operator_id while the operator's own call waits for the chat
--   would then deadlock (found by tests/test_db_concurrency.py).
-- * Times are read with chatlab_now() AFTER the row locks are held: a function that waited
--   for a lock stamps the moment it acted, so history intervals of one chat never overlap.
-- * Every chat state change announces its event in chatlab.event for the guard trigger
--   of 014 (and chatlab.legacy = 'on' for the pre-fix assign).

-- ---------------------------------------------------------------------------------------
-- Small helpers
-- ---------------------------------------------------------------------------------------

-- The state machine as a function: the state after p_event, or CL004/CL005/CL006.
CREATE FUNCTION chat_next_state(
    p_state text, p_event text, p_legacy boolean DEFAULT false, p_chat_id bigint DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_rule chat_transitions;
    v_who  text := CASE WHEN p_chat_id IS NULL THEN 'chat' ELSE format('chat %s', p_chat_id) END;
BEGIN
    IF p_state IS NULL OR p_state NOT IN ('waiting_assignment', 'assigned', 'waiting_real_user_reply', 'completed') THEN
        RAISE EXCEPTION 'unknown chat state %; expected one of: waiting_assignment, assigned, waiting_real_user_reply, completed',
                        coalesce(quote_literal(p_state), 'NULL') USING ERRCODE = 'CL006';
    END IF;
    IF p_event IS NULL OR p_event NOT IN ('user_message', 'assign', 'operator_reply', 'unassign',
                                          'idle_release', 'stuck_release', 'end') THEN
        RAISE EXCEPTION 'unknown chat event %; expected one of: user_message, assign, operator_reply, unassign, idle_release, stuck_release, end',
                        coalesce(quote_literal(p_event), 'NULL') USING ERRCODE = 'CL006';
    END IF;
    SELECT * INTO v_rule FROM chat_transitions t WHERE t.state = p_state AND t.event = p_event;
    IF NOT FOUND OR (v_rule.legacy_only AND NOT coalesce(p_legacy, false)) THEN
        RAISE EXCEPTION '%: event ''%'' is not allowed in state ''%''%', v_who, p_event, p_state,
                        CASE WHEN FOUND THEN ' (only the legacy pre-fix policy may do that)' ELSE '' END
            USING ERRCODE = CASE WHEN p_state = 'completed' THEN 'CL005' ELSE 'CL004' END,
                  DETAIL = json_build_object('chat_id', p_chat_id, 'state', p_state, 'event', p_event)::text;
    END IF;
    RETURN v_rule.next_state;
END
$$;

-- Tell the guard trigger which event the next chat_state write applies (transaction-local).
CREATE FUNCTION _chatlab_announce(p_event text, p_legacy boolean DEFAULT false) RETURNS void
LANGUAGE sql VOLATILE
SET search_path FROM CURRENT
AS $$
    SELECT set_config('chatlab.event', coalesce(p_event, ''), true),
           set_config('chatlab.legacy', CASE WHEN p_legacy THEN 'on' ELSE 'off' END, true);
$$;

CREATE FUNCTION _chatlab_check_text(p_what text, p_value text, p_max integer) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF p_value IS NULL OR p_value !~ '\S' THEN  -- empty or only whitespace
        RAISE EXCEPTION '% must not be empty', p_what USING ERRCODE = 'CL006';
    END IF;
    IF length(p_value) > p_max THEN
        RAISE EXCEPTION '% is too long: % characters, at most % allowed', p_what, length(p_value), p_max
            USING ERRCODE = 'CL006';
    END IF;
END
$$;

CREATE FUNCTION _chatlab_check_id(p_what text, p_value bigint) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path FROM CURRENT
AS $$
BEGIN
    IF p_value IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', p_what USING ERRCODE = 'CL006';
    END IF;
END
$$;

-- Lock and return an operator row, or raise CL001.
CREATE FUNCTION _chatlab_lock_operator(p_operator_id bigint) RETURNS operators
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_op operators;
BEGIN
    PERFORM _chatlab_check_id('operator id', p_operator_id);
    SELECT * INTO v_op FROM operators WHERE id = p_operator_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown operator %', p_operator_id USING ERRCODE = 'CL001';
    END IF;
    RETURN v_op;
END
$$;

-- Lock and return a chat row, or raise CL002.
CREATE FUNCTION _chatlab_lock_chat(p_chat_id bigint) RETURNS chats
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_chat chats;
BEGIN
    PERFORM _chatlab_check_id('chat id', p_chat_id);
    SELECT * INTO v_chat FROM chats WHERE id = p_chat_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown chat %', p_chat_id USING ERRCODE = 'CL002';
    END IF;
    RETURN v_chat;
END
$$;

-- Lock operator then chat for an action only the chat's holder may take.
-- CL001/CL002 unknown, CL005 completed, CL003 not held by this operator.
CREATE FUNCTION _chatlab_lock_held_chat(p_operator_id bigint, p_chat_id bigint, p_action text)
RETURNS chats
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_chat chats;
BEGIN
    PERFORM _chatlab_lock_operator(p_operator_id);
    v_chat := _chatlab_lock_chat(p_chat_id);
    IF v_chat.chat_state = 'completed' THEN
        RAISE EXCEPTION 'chat %: cannot %: the chat is completed', p_chat_id, p_action
            USING ERRCODE = 'CL005',
                  DETAIL = json_build_object('chat_id', p_chat_id, 'state', 'completed', 'event', NULL)::text;
    END IF;
    IF v_chat.chat_state <> 'assigned' OR v_chat.assigned_operator_id IS DISTINCT FROM p_operator_id THEN
        RAISE EXCEPTION 'operator % cannot % chat %: it is not assigned to this operator (state %)',
                        p_operator_id, p_action, p_chat_id, v_chat.chat_state
            USING ERRCODE = 'CL003';
    END IF;
    RETURN v_chat;
END
$$;

-- Take a locked, assigned chat away from its holder: state change, history row closed,
-- event logged.  p_event is one of operator_reply, unassign, idle_release, stuck_release,
-- end; the holder becomes last_operator_id.
CREATE FUNCTION _chatlab_release(
    p_chat chats, p_event text, p_history_reason text, p_event_reason text, p_at timestamptz
) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_to text := chat_next_state(p_chat.chat_state, p_event, false, p_chat.id);
BEGIN
    PERFORM _chatlab_announce(p_event);
    UPDATE chats SET
        chat_state           = v_to,
        assigned_operator_id = NULL,
        last_operator_id     = p_chat.assigned_operator_id,
        is_active            = (v_to <> 'completed'),
        operator_replied_at  = CASE WHEN p_event = 'operator_reply' THEN p_at ELSE operator_replied_at END,
        updated_at           = p_at
    WHERE id = p_chat.id;
    PERFORM _chatlab_announce(NULL);
    UPDATE chat_assignments SET released_at = p_at, release_reason = p_history_reason
    WHERE chat_id = p_chat.id AND released_at IS NULL;
    INSERT INTO chat_events (at, chat_id, operator_id, event, from_state, to_state, reason)
    VALUES (p_at, p_chat.id, p_chat.assigned_operator_id, p_event, p_chat.chat_state, v_to, p_event_reason);
END
$$;

-- ---------------------------------------------------------------------------------------
-- Operators
-- ---------------------------------------------------------------------------------------

-- A new operator; its last activity is its creation (as in sim/system.py).
CREATE FUNCTION create_operator(p_name text, p_max_chats integer DEFAULT 1, p_online boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_at timestamptz := chatlab_now();
    v_id bigint;
BEGIN
    PERFORM _chatlab_check_text('operator name', p_name, 200);
    IF p_max_chats IS NULL OR p_max_chats < 1 THEN
        RAISE EXCEPTION 'max_chats must be at least 1, got %', coalesce(p_max_chats::text, 'NULL')
            USING ERRCODE = 'CL006';
    END IF;
    IF p_online IS NULL THEN
        RAISE EXCEPTION 'online must be true or false, not NULL' USING ERRCODE = 'CL006';
    END IF;
    INSERT INTO operators (name, is_online, max_chats, last_activity_at, created_at)
    VALUES (p_name, p_online, p_max_chats, v_at, v_at)
    RETURNING id INTO v_id;
    IF p_online THEN
        INSERT INTO chat_events (at, operator_id, event) VALUES (v_at, v_id, 'operator_online');
    END IF;
    RETURN v_id;
END
$$;

-- Online: counts as activity.  Offline: the operator's assigned chats go back to the
-- queue (event unassign, reason operator_offline).  Returns the number of chats released.
CREATE FUNCTION set_operator_online(p_operator_id bigint, p_online boolean) RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_op       operators := _chatlab_lock_operator(p_operator_id);
    v_at       timestamptz;
    v_chat     chats;
    v_released integer := 0;
BEGIN
    IF p_online IS NULL THEN
        RAISE EXCEPTION 'online must be true or false, not NULL' USING ERRCODE = 'CL006';
    END IF;
    v_at := chatlab_now();
    IF p_online THEN
        UPDATE operators SET is_online = true, last_activity_at = v_at WHERE id = p_operator_id;
        IF NOT v_op.is_online THEN
            INSERT INTO chat_events (at, operator_id, event) VALUES (v_at, p_operator_id, 'operator_online');
        END IF;
        RETURN 0;
    END IF;
    FOR v_chat IN
        SELECT * FROM chats WHERE chat_state = 'assigned' AND assigned_operator_id = p_operator_id
        ORDER BY id FOR NO KEY UPDATE
    LOOP
        PERFORM _chatlab_release(v_chat, 'unassign', 'operator_offline', 'operator_offline', v_at);
        v_released := v_released + 1;
    END LOOP;
    UPDATE operators SET is_online = false WHERE id = p_operator_id;
    IF v_op.is_online THEN
        INSERT INTO chat_events (at, operator_id, event) VALUES (v_at, p_operator_id, 'operator_offline');
    END IF;
    RETURN v_released;
END
$$;

-- "I am still here" (heartbeat): activity for idle detection, nothing else.
CREATE FUNCTION touch_operator(p_operator_id bigint) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM _chatlab_lock_operator(p_operator_id);
    UPDATE operators SET last_activity_at = chatlab_now() WHERE id = p_operator_id;
END
$$;

-- ---------------------------------------------------------------------------------------
-- Real users
-- ---------------------------------------------------------------------------------------

-- A real user's message (the seed's app/api/messages route).  Without p_chat_id it opens a
-- new chat in the queue; on an existing chat of the same user: waiting_real_user_reply
-- goes back to waiting_assignment (waiting_since := now); waiting_assignment and assigned
-- keep their state and queue position.  Returns the chat id.
CREATE FUNCTION real_user_message(p_real_user_id bigint, p_body text, p_chat_id bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_chat chats;
    v_at   timestamptz;
    v_to   text;
    v_id   bigint;
BEGIN
    PERFORM _chatlab_check_id('real user id', p_real_user_id);
    PERFORM _chatlab_check_text('message body', p_body, 10000);
    IF p_chat_id IS NULL THEN
        v_at := chatlab_now();
        INSERT INTO chats (real_user_id, chat_state, waiting_since, last_user_message_at, created_at, updated_at)
        VALUES (p_real_user_id, 'waiting_assignment', v_at, v_at, v_at, v_at)
        RETURNING id INTO v_id;
        INSERT INTO chat_events (at, chat_id, event, from_state, to_state)
        VALUES (v_at, v_id, 'user_message', NULL, 'waiting_assignment');
    ELSE
        v_chat := _chatlab_lock_chat(p_chat_id);
        IF v_chat.real_user_id <> p_real_user_id THEN
            RAISE EXCEPTION 'chat % does not belong to real user %', p_chat_id, p_real_user_id
                USING ERRCODE = 'CL003';
        END IF;
        v_to := chat_next_state(v_chat.chat_state, 'user_message', false, p_chat_id);
        v_at := chatlab_now();
        v_id := p_chat_id;
        PERFORM _chatlab_announce('user_message');
        UPDATE chats SET
            chat_state           = v_to,
            waiting_since        = CASE WHEN v_chat.chat_state = 'waiting_real_user_reply' THEN v_at ELSE waiting_since END,
            last_user_message_at = v_at,
            updated_at           = v_at
        WHERE id = p_chat_id;
        PERFORM _chatlab_announce(NULL);
        INSERT INTO chat_events (at, chat_id, event, from_state, to_state)
        VALUES (v_at, p_chat_id, 'user_message', v_chat.chat_state, v_to);
    END IF;
    INSERT INTO messages (chat_id, sender_type, sender_id, body, created_at)
    VALUES (v_id, 'real_user', p_real_user_id, p_body, v_at);
    RETURN v_id;
END
$$;

-- ---------------------------------------------------------------------------------------
-- Assignment: the seed's fix plus the lab's policies (sim/policies.py is the reference)
-- ---------------------------------------------------------------------------------------

-- Give operator p_operator_id a chat under p_policy; return its id, or NULL when the
-- operator is offline, at capacity, or nothing is eligible.
--
--   legacy                 pre-fix: oldest of waiting_assignment + waiting_real_user_reply,
--                          no exclusion (reproduces the "same chat again" bug)
--   exclude_last           the fix: oldest waiting_assignment chat whose last operator is
--                          someone else
--   exclude_last_fallback  the fix, but a chat waiting >= p_fallback_after seconds may go
--                          back to its last operator (no starvation when it is alone)
--   random                 eligible as the fix, ordered by md5(salt || ':' || id)
--   round_robin, least_loaded, longest_idle
--                          greedy matching: the online operators with capacity, sorted by
--                          the policy's key, each take the oldest chat the fix allows them;
--                          the requester gets what the matching gives it
--
-- Concurrency: READ COMMITTED; the operator row is locked (capacity cannot be overbooked
-- by two calls of one operator) and the chat is claimed with SELECT ... ORDER BY ... LIMIT 1
-- FOR NO KEY UPDATE SKIP LOCKED: concurrent callers skip each other's rows instead of queueing
-- behind them, and the row's state is re-checked once locked, so no chat goes to two
-- operators.  The claim is a single-row scalar pick (not "id IN (subquery)", which the
-- planner may re-run and so lock more than one row).
CREATE FUNCTION assign_chat_to_operator(
    p_operator_id    bigint,
    p_policy         text             DEFAULT 'exclude_last',
    p_fallback_after double precision DEFAULT 300,
    p_salt           bigint           DEFAULT 0
) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_policy   text             := coalesce(p_policy, 'exclude_last');
    v_fallback double precision := coalesce(p_fallback_after, 300);
    v_salt     bigint           := coalesce(p_salt, 0);
    v_op       operators;
    v_active   bigint;
    v_now      timestamptz;
    v_cutoff   timestamptz;
    v_at       timestamptz;
    v_taken    bigint[] := '{}';
    v_ahead    record;
    v_pick     bigint;
    v_chat     bigint;
    v_from     text;
BEGIN
    IF v_policy NOT IN ('legacy', 'exclude_last', 'exclude_last_fallback', 'round_robin',
                        'least_loaded', 'longest_idle', 'random') THEN
        RAISE EXCEPTION 'unknown policy %; expected one of: legacy, exclude_last, exclude_last_fallback, round_robin, least_loaded, longest_idle, random',
                        quote_literal(v_policy) USING ERRCODE = 'CL007';
    END IF;
    IF v_fallback < 0 OR v_fallback = 'NaN'::float8 THEN
        RAISE EXCEPTION 'fallback_after must be >= 0 seconds, got %', v_fallback USING ERRCODE = 'CL006';
    END IF;
    v_op := _chatlab_lock_operator(p_operator_id);

    -- Offline or full: no work, and no error (asking is not a mistake).
    IF NOT v_op.is_online THEN
        RETURN NULL;
    END IF;
    SELECT count(*) INTO v_active FROM chats
    WHERE chat_state = 'assigned' AND assigned_operator_id = p_operator_id;
    IF v_active >= v_op.max_chats THEN
        RETURN NULL;
    END IF;
    v_now := chatlab_now();

    IF v_policy IN ('round_robin', 'least_loaded', 'longest_idle') THEN
        -- Replay the greedy matching up to the requester: each operator ahead of it takes
        -- the oldest chat it may have; those chats are not the requester's to take.
        FOR v_ahead IN
            SELECT o.id
            FROM operators o
            CROSS JOIN LATERAL (
                SELECT count(*) AS n FROM chats c
                WHERE c.chat_state = 'assigned' AND c.assigned_operator_id = o.id
            ) load
            WHERE o.is_online AND load.n < o.max_chats
            ORDER BY CASE WHEN v_policy = 'least_loaded' THEN load.n ELSE 0 END,
                     CASE WHEN v_policy = 'longest_idle' THEN o.last_activity_at ELSE o.last_assigned_at END
                         ASC NULLS FIRST,
                     o.id
        LOOP
            EXIT WHEN v_ahead.id = p_operator_id;
            SELECT c.id INTO v_pick FROM chats c
            WHERE c.chat_state = 'waiting_assignment'
              AND c.last_operator_id IS DISTINCT FROM v_ahead.id
              AND c.id <> ALL (v_taken)
            ORDER BY c.waiting_since, c.id
            LIMIT 1;
            EXIT WHEN v_pick IS NULL AND NOT EXISTS (   -- queue used up: nobody further gets one
                SELECT 1 FROM chats c WHERE c.chat_state = 'waiting_assignment' AND c.id <> ALL (v_taken));
            IF v_pick IS NOT NULL THEN
                v_taken := v_taken || v_pick;
            END IF;
        END LOOP;
    END IF;

    -- The claim.
    IF v_policy = 'legacy' THEN
        -- the pre-fix rule in the pre-fix columns: open and nobody holds it (= waiting_assignment
        -- or waiting_real_user_reply, by 014's constraints; matches chats_legacy_queue_idx)
        SELECT c.id, c.chat_state INTO v_chat, v_from FROM chats c
        WHERE c.is_active AND c.assigned_operator_id IS NULL
        ORDER BY c.waiting_since, c.id
        LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED;
    ELSIF v_policy = 'exclude_last_fallback' THEN
        v_cutoff := CASE WHEN v_fallback > 1e10 THEN '-infinity'::timestamptz
                         ELSE v_now - make_interval(secs => v_fallback) END;
        SELECT c.id, c.chat_state INTO v_chat, v_from FROM chats c
        WHERE c.chat_state = 'waiting_assignment'
          AND (c.last_operator_id IS DISTINCT FROM p_operator_id OR c.waiting_since <= v_cutoff)
        ORDER BY c.waiting_since, c.id
        LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED;
    ELSIF v_policy = 'random' THEN
        SELECT c.id, c.chat_state INTO v_chat, v_from FROM chats c
        WHERE c.chat_state = 'waiting_assignment'
          AND c.last_operator_id IS DISTINCT FROM p_operator_id
        ORDER BY md5(v_salt::text || ':' || c.id::text), c.id
        LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED;
    ELSE  -- exclude_last and the operator-ordered policies
        SELECT c.id, c.chat_state INTO v_chat, v_from FROM chats c
        WHERE c.chat_state = 'waiting_assignment'
          AND c.last_operator_id IS DISTINCT FROM p_operator_id
          AND c.id <> ALL (v_taken)
        ORDER BY c.waiting_since, c.id
        LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED;
    END IF;
    IF v_chat IS NULL THEN
        RETURN NULL;
    END IF;

    v_at := chatlab_now();  -- after the chat lock: see the conventions above
    PERFORM _chatlab_announce('assign', v_policy = 'legacy');
    UPDATE chats SET chat_state = 'assigned', assigned_operator_id = p_operator_id, updated_at = v_at
    WHERE id = v_chat;
    PERFORM _chatlab_announce(NULL);
    UPDATE operators SET last_assigned_at = v_at WHERE id = p_operator_id;
    INSERT INTO chat_assignments (chat_id, operator_id, assigned_at) VALUES (v_chat, p_operator_id, v_at);
    INSERT INTO chat_events (at, chat_id, operator_id, event, from_state, to_state)
    VALUES (v_at, v_chat, p_operator_id, 'assign', v_from, 'assigned');
    RETURN v_chat;
END
$$;

-- ---------------------------------------------------------------------------------------
-- Operator actions on a held chat
-- ---------------------------------------------------------------------------------------

-- The seed's app/api/operator/messages route: only the holder may reply; the chat then
-- waits for the real user (not assignable: the fix), last_operator_id := the replier.
-- Returns the message id.
CREATE FUNCTION operator_message(p_operator_id bigint, p_chat_id bigint, p_body text) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_chat chats;
    v_at   timestamptz;
    v_msg  bigint;
BEGIN
    PERFORM _chatlab_check_text('message body', p_body, 10000);
    v_chat := _chatlab_lock_held_chat(p_operator_id, p_chat_id, 'reply to');
    v_at := chatlab_now();
    PERFORM _chatlab_release(v_chat, 'operator_reply', 'operator_reply', NULL, v_at);
    UPDATE operators SET last_activity_at = v_at WHERE id = p_operator_id;
    INSERT INTO messages (chat_id, sender_type, sender_id, body, created_at)
    VALUES (p_chat_id, 'operator', p_operator_id, p_body, v_at)
    RETURNING id INTO v_msg;
    RETURN v_msg;
END
$$;

-- The seed's app/api/operator/unassign route: the holder hands the chat back to the
-- queue; it keeps its queue position (waiting_since) and the holder becomes last operator.
CREATE FUNCTION unassign_chat(p_operator_id bigint, p_chat_id bigint) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_chat chats := _chatlab_lock_held_chat(p_operator_id, p_chat_id, 'unassign');
    v_at   timestamptz := chatlab_now();
BEGIN
    PERFORM _chatlab_release(v_chat, 'unassign', 'unassign', NULL, v_at);
    UPDATE operators SET last_activity_at = v_at WHERE id = p_operator_id;
END
$$;

-- Close a chat from any open state.  CL005 if it is already completed.
CREATE FUNCTION end_chat(p_chat_id bigint, p_reason text DEFAULT 'resolved') RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_chat chats;
    v_at   timestamptz;
    v_to   text;
BEGIN
    PERFORM _chatlab_check_text('end reason', p_reason, 200);
    v_chat := _chatlab_lock_chat(p_chat_id);
    v_to := chat_next_state(v_chat.chat_state, 'end', false, p_chat_id);
    v_at := chatlab_now();
    IF v_chat.chat_state = 'assigned' THEN
        PERFORM _chatlab_release(v_chat, 'end', 'end', p_reason, v_at);
        RETURN;
    END IF;
    PERFORM _chatlab_announce('end');
    UPDATE chats SET chat_state = v_to, is_active = false, updated_at = v_at WHERE id = p_chat_id;
    PERFORM _chatlab_announce(NULL);
    INSERT INTO chat_events (at, chat_id, event, from_state, to_state, reason)
    VALUES (v_at, p_chat_id, 'end', v_chat.chat_state, v_to, p_reason);
END
$$;

-- ---------------------------------------------------------------------------------------
-- Housekeeping: idle detection and stuck chats (the seed's cron routes)
-- ---------------------------------------------------------------------------------------

-- Idle detection: every online operator with no activity for p_idle_after_seconds goes
-- offline and its ASSIGNED chats go back to the queue (event idle_release).  Chats waiting
-- for the real user's reply are not the operator's work and are never touched (the seed's
-- "no false positives").  Returns the number of chats released.
CREATE FUNCTION release_idle_operator_chats(p_idle_after_seconds double precision) RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_cutoff   timestamptz;
    v_at       timestamptz;
    v_op       operators;
    v_chat     chats;
    v_released integer := 0;
BEGIN
    IF p_idle_after_seconds IS NULL OR p_idle_after_seconds < 0 OR p_idle_after_seconds = 'NaN'::float8
       OR p_idle_after_seconds = 'Infinity'::float8 THEN
        RAISE EXCEPTION 'idle_after_seconds must be a finite number >= 0, got %',
                        coalesce(p_idle_after_seconds::text, 'NULL') USING ERRCODE = 'CL006';
    END IF;
    v_cutoff := chatlab_now() - make_interval(secs => p_idle_after_seconds);
    FOR v_op IN
        SELECT * FROM operators
        WHERE is_online AND last_activity_at <= v_cutoff
        ORDER BY id FOR NO KEY UPDATE
    LOOP
        v_at := chatlab_now();
        FOR v_chat IN
            SELECT * FROM chats WHERE chat_state = 'assigned' AND assigned_operator_id = v_op.id
            ORDER BY id FOR NO KEY UPDATE
        LOOP
            PERFORM _chatlab_release(v_chat, 'idle_release', 'idle', 'idle', v_at);
            v_released := v_released + 1;
        END LOOP;
        UPDATE operators SET is_online = false WHERE id = v_op.id;
        INSERT INTO chat_events (at, operator_id, event, reason) VALUES (v_at, v_op.id, 'operator_offline', 'idle');
    END LOOP;
    RETURN v_released;
END
$$;

-- The seed's manual fix: put one assigned chat back in the queue (event stuck_release);
-- its holder becomes last operator.  Returns the holder's id.  CL009 if nobody holds it,
-- CL005 if completed.
CREATE FUNCTION release_and_reassign_chat(p_chat_id bigint, p_reason text DEFAULT 'manual_fix') RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_chat chats;
BEGIN
    PERFORM _chatlab_check_text('release reason', p_reason, 200);
    v_chat := _chatlab_lock_chat(p_chat_id);
    IF v_chat.chat_state = 'completed' THEN
        PERFORM chat_next_state(v_chat.chat_state, 'stuck_release', false, p_chat_id);  -- raises CL005
    END IF;
    IF v_chat.chat_state <> 'assigned' THEN
        RAISE EXCEPTION 'chat % is not assigned (state %): nothing to release', p_chat_id, v_chat.chat_state
            USING ERRCODE = 'CL009',
                  DETAIL = json_build_object('chat_id', p_chat_id, 'state', v_chat.chat_state,
                                             'event', 'stuck_release')::text;
    END IF;
    PERFORM _chatlab_release(v_chat, 'stuck_release', p_reason, p_reason, chatlab_now());
    RETURN v_chat.assigned_operator_id;
END
$$;
