-- 019 (lab): real floors — operator skills, chat topics with a required skill and a priority
-- class, and the routing rules every policy applies (docs/semantics.md, "Routing";
-- sim/policies.py's Routing is the reference):
--   * an operator is offered only chats whose skill it has, unless the chat has waited
--     p_relax_after seconds (skill relaxation); a chat without a skill goes to anyone;
--   * the queue is ordered by priority class (higher first), then by the policy's own order;
--     with p_sla_targets (seconds per class, index = class + 1) by deadline
--     waiting_since + target instead of waiting time (random keeps its own order).
-- New errors: CL010 unknown topic.

-- ---------------------------------------------------------------------------------------
-- Schema
-- ---------------------------------------------------------------------------------------

ALTER TABLE operators ADD COLUMN skills text[] NOT NULL DEFAULT '{}';

CREATE TABLE topics (
    name     text PRIMARY KEY CHECK (name ~ '\S' AND length(name) <= 100),
    skill    text CHECK (skill IS NULL OR (skill ~ '\S' AND length(skill) <= 100)),
    priority integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 1000)
);

-- Copied from the topic when the chat is opened: a topic redefined later does not move
-- the chats already in the queue.
ALTER TABLE chats
    ADD COLUMN topic    text REFERENCES topics (name),
    ADD COLUMN skill    text,
    ADD COLUMN priority integer NOT NULL DEFAULT 0;

-- The queue indexes follow the queue order: priority class first, then waiting time (one
-- index scan per claim, as before; with every chat in class 0 the order is 014's).
DROP INDEX chats_waiting_queue_idx;
CREATE INDEX chats_waiting_queue_idx ON chats (priority DESC, waiting_since, id)
    WHERE chat_state = 'waiting_assignment';
DROP INDEX chats_legacy_queue_idx;
CREATE INDEX chats_legacy_queue_idx ON chats (priority DESC, waiting_since, id)
    WHERE is_active AND assigned_operator_id IS NULL;

-- ---------------------------------------------------------------------------------------
-- Topics, skills, chats with a topic
-- ---------------------------------------------------------------------------------------

-- Define (or redefine) a topic: new chats of it need p_skill (NULL: anyone) and have class
-- p_priority.  CL006 on a bad name, skill or priority.
CREATE FUNCTION define_topic(p_name text, p_skill text DEFAULT NULL, p_priority integer DEFAULT 0)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM _chatlab_check_text('topic name', p_name, 100);
    IF p_skill IS NOT NULL THEN
        PERFORM _chatlab_check_text('skill', p_skill, 100);
    END IF;
    IF p_priority IS NULL OR p_priority < 0 OR p_priority > 1000 THEN
        RAISE EXCEPTION 'priority must be an integer from 0 to 1000, got %', coalesce(p_priority::text, 'NULL')
            USING ERRCODE = 'CL006';
    END IF;
    INSERT INTO topics (name, skill, priority) VALUES (p_name, p_skill, p_priority)
    ON CONFLICT (name) DO UPDATE SET skill = excluded.skill, priority = excluded.priority;
END
$$;

-- An operator with skills: the skills are checked first (before 015's create_operator takes
-- an id from the sequence, which a later error would not give back), then 015's checks.
CREATE FUNCTION create_operator(p_name text, p_max_chats integer, p_online boolean, p_skills text[])
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_id    bigint;
    v_skill text;
BEGIN
    IF p_skills IS NULL THEN
        RAISE EXCEPTION 'skills must be a list of names, not NULL' USING ERRCODE = 'CL006';
    END IF;
    FOREACH v_skill IN ARRAY p_skills LOOP
        PERFORM _chatlab_check_text('skill', v_skill, 100);
    END LOOP;
    v_id := create_operator(p_name, p_max_chats, p_online);
    UPDATE operators SET skills = p_skills WHERE id = v_id;
    RETURN v_id;
END
$$;

-- A real user's message with the topic of a new chat (015's real_user_message, then the
-- topic's skill and class on the new chat).  On an existing chat p_topic is ignored.
CREATE FUNCTION real_user_message(p_real_user_id bigint, p_body text, p_chat_id bigint, p_topic text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_topic topics;
    v_id    bigint;
BEGIN
    IF p_chat_id IS NOT NULL OR p_topic IS NULL THEN
        RETURN real_user_message(p_real_user_id, p_body, p_chat_id);
    END IF;
    PERFORM _chatlab_check_id('real user id', p_real_user_id);
    PERFORM _chatlab_check_text('message body', p_body, 10000);
    SELECT * INTO v_topic FROM topics WHERE name = p_topic;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown topic %', quote_literal(p_topic) USING ERRCODE = 'CL010';
    END IF;
    v_id := real_user_message(p_real_user_id, p_body, NULL);
    UPDATE chats SET topic = v_topic.name, skill = v_topic.skill, priority = v_topic.priority WHERE id = v_id;
    RETURN v_id;
END
$$;

-- ---------------------------------------------------------------------------------------
-- Assignment with routing rules (replaces 015's; the same policies, the same claim)
-- ---------------------------------------------------------------------------------------

DROP FUNCTION assign_chat_to_operator(bigint, text, double precision, bigint);

-- A chat's SLA deadline (NULL: no target for its class, i.e. last).
CREATE FUNCTION _chatlab_deadline(p_since timestamptz, p_priority integer, p_targets double precision[])
RETURNS timestamptz
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT p_since + make_interval(secs => p_targets[p_priority + 1]) $$;

-- Give operator p_operator_id a chat under p_policy with the routing rules; return its id, or
-- NULL when the operator is offline, at capacity, or nothing is eligible.  The policies and
-- the claim are 015's (see there: READ COMMITTED, the operator row locked, one chat claimed
-- with ORDER BY ... LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED); what changes is which chats an
-- operator may take (its skill, or a chat waited since v_relax: written out in each query, as
-- a helper function would be called per row, not inlined) and the queue order (priority class,
-- or deadline).
CREATE FUNCTION assign_chat_to_operator(
    p_operator_id    bigint,
    p_policy         text               DEFAULT 'exclude_last',
    p_fallback_after double precision   DEFAULT 300,
    p_salt           bigint             DEFAULT 0,
    p_relax_after    double precision   DEFAULT NULL,
    p_sla_targets    double precision[] DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_policy   text             := coalesce(p_policy, 'exclude_last');
    v_fallback double precision := coalesce(p_fallback_after, 300);
    v_salt     bigint           := coalesce(p_salt, 0);
    v_sla      boolean          := p_sla_targets IS NOT NULL;
    v_op       operators;
    v_ahead    operators;
    v_now      timestamptz;
    v_cutoff   timestamptz      := '-infinity';  -- exclude_last_fallback: waited since at most this
    v_relax    timestamptz      := '-infinity';  -- skill relaxation: waited since at most this
    v_taken    bigint[]         := '{}';
    v_pick     bigint;
    v_chat     bigint;
    v_from     text;
    v_at       timestamptz;
BEGIN
    IF v_policy NOT IN ('legacy', 'exclude_last', 'exclude_last_fallback', 'round_robin',
                        'least_loaded', 'longest_idle', 'random') THEN
        RAISE EXCEPTION 'unknown policy %; expected one of: legacy, exclude_last, exclude_last_fallback, round_robin, least_loaded, longest_idle, random',
                        quote_literal(v_policy) USING ERRCODE = 'CL007';
    END IF;
    IF v_fallback < 0 OR v_fallback = 'NaN'::float8 THEN
        RAISE EXCEPTION 'fallback_after must be >= 0 seconds, got %', v_fallback USING ERRCODE = 'CL006';
    END IF;
    IF p_relax_after < 0 OR p_relax_after = 'NaN'::float8 OR p_relax_after > 1e9 THEN
        RAISE EXCEPTION 'relax_after must be from 0 to 1e9 seconds, got %', p_relax_after USING ERRCODE = 'CL006';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(p_sla_targets) t WHERE t IS NULL OR t < 0 OR t = 'NaN'::float8 OR t > 1e9) THEN
        RAISE EXCEPTION 'SLA targets must be from 0 to 1e9 seconds, got %', p_sla_targets USING ERRCODE = 'CL006';
    END IF;
    v_op := _chatlab_lock_operator(p_operator_id);
    IF NOT v_op.is_online OR (SELECT count(*) FROM chats WHERE chat_state = 'assigned'
                              AND assigned_operator_id = p_operator_id) >= v_op.max_chats THEN
        RETURN NULL;  -- offline or full: no work, and no error (asking is not a mistake)
    END IF;
    v_now := chatlab_now();
    IF v_policy = 'exclude_last_fallback' AND v_fallback <= 1e10 THEN
        v_cutoff := v_now - make_interval(secs => v_fallback);
    END IF;
    IF p_relax_after IS NOT NULL THEN
        v_relax := v_now - make_interval(secs => p_relax_after);
    END IF;

    IF v_policy IN ('round_robin', 'least_loaded', 'longest_idle') THEN
        -- Replay the greedy matching up to the requester: each operator ahead of it takes the
        -- first chat in queue order it may have (the fix's exclusion and its skills).
        FOR v_ahead IN
            SELECT o.* FROM operators o
            CROSS JOIN LATERAL (SELECT count(*) AS n FROM chats c
                                WHERE c.chat_state = 'assigned' AND c.assigned_operator_id = o.id) load
            WHERE o.is_online AND load.n < o.max_chats
            ORDER BY CASE WHEN v_policy = 'least_loaded' THEN load.n ELSE 0 END,
                     CASE WHEN v_policy = 'longest_idle' THEN o.last_activity_at ELSE o.last_assigned_at END
                         ASC NULLS FIRST,
                     o.id
        LOOP
            EXIT WHEN v_ahead.id = p_operator_id;
            SELECT c.id INTO v_pick FROM chats c
            WHERE c.chat_state = 'waiting_assignment' AND c.last_operator_id IS DISTINCT FROM v_ahead.id
              AND c.id <> ALL (v_taken) AND (c.skill IS NULL OR c.skill = ANY (v_ahead.skills) OR c.waiting_since <= v_relax)
            ORDER BY CASE WHEN v_sla THEN _chatlab_deadline(c.waiting_since, c.priority, p_sla_targets) END NULLS LAST,
                     CASE WHEN v_sla THEN 0 ELSE -c.priority END, CASE WHEN NOT v_sla THEN c.waiting_since END, c.id
            LIMIT 1;
            EXIT WHEN v_pick IS NULL AND NOT EXISTS (   -- queue used up: nobody further gets one
                SELECT 1 FROM chats c WHERE c.chat_state = 'waiting_assignment' AND c.id <> ALL (v_taken));
            IF v_pick IS NOT NULL THEN
                v_taken := v_taken || v_pick;
            END IF;
        END LOOP;
    END IF;

    -- The claim: one row, in queue order, skipping rows other callers hold.
    IF v_policy = 'random' THEN
        SELECT c.id, c.chat_state INTO v_chat, v_from FROM chats c
        WHERE c.chat_state = 'waiting_assignment' AND c.last_operator_id IS DISTINCT FROM p_operator_id
          AND (c.skill IS NULL OR c.skill = ANY (v_op.skills) OR c.waiting_since <= v_relax)
        ORDER BY c.priority DESC, md5(v_salt::text || ':' || c.id::text), c.id
        LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED;
    ELSIF v_sla THEN
        SELECT c.id, c.chat_state INTO v_chat, v_from FROM chats c
        WHERE (CASE WHEN v_policy = 'legacy' THEN c.is_active AND c.assigned_operator_id IS NULL
                    ELSE c.chat_state = 'waiting_assignment'
                         AND (c.last_operator_id IS DISTINCT FROM p_operator_id OR c.waiting_since <= v_cutoff) END)
          AND c.id <> ALL (v_taken) AND (c.skill IS NULL OR c.skill = ANY (v_op.skills) OR c.waiting_since <= v_relax)
        ORDER BY _chatlab_deadline(c.waiting_since, c.priority, p_sla_targets) NULLS LAST, c.id
        LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED;
    ELSIF v_policy = 'legacy' THEN
        -- the pre-fix rule in the pre-fix columns: open and nobody holds it (= waiting_assignment
        -- or waiting_real_user_reply, by 014's constraints; matches chats_legacy_queue_idx)
        SELECT c.id, c.chat_state INTO v_chat, v_from FROM chats c
        WHERE c.is_active AND c.assigned_operator_id IS NULL
          AND (c.skill IS NULL OR c.skill = ANY (v_op.skills) OR c.waiting_since <= v_relax)
        ORDER BY c.priority DESC, c.waiting_since, c.id
        LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED;
    ELSE  -- exclude_last, exclude_last_fallback and the operator-ordered policies
        SELECT c.id, c.chat_state INTO v_chat, v_from FROM chats c
        WHERE c.chat_state = 'waiting_assignment'
          AND (c.last_operator_id IS DISTINCT FROM p_operator_id OR c.waiting_since <= v_cutoff)
          AND c.id <> ALL (v_taken) AND (c.skill IS NULL OR c.skill = ANY (v_op.skills) OR c.waiting_since <= v_relax)
        ORDER BY c.priority DESC, c.waiting_since, c.id
        LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED;
    END IF;
    IF v_chat IS NULL THEN
        RETURN NULL;
    END IF;

    v_at := chatlab_now();  -- after the chat lock: see 015's conventions
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
-- Access (017): the new API functions run with definer rights, only chatlab_app may call them
-- ---------------------------------------------------------------------------------------

-- The API by name (every overload), so a migration that adds one needs no new list.
CREATE OR REPLACE FUNCTION chat_api_functions() RETURNS SETOF regprocedure
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT p.oid::regprocedure FROM pg_proc p
    WHERE p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
      AND p.proname = ANY ('{create_operator, define_topic, set_operator_online, touch_operator, real_user_message,
          assign_chat_to_operator, operator_message, unassign_chat, end_chat, release_idle_operator_chats,
          release_and_reassign_chat, detect_stuck_chats, get_assignment_queue_status, chat_next_state,
          operator_chat_messages, chatlab_now, chat_state_verification, chat_access_verification}'::text[])
$$;

REVOKE EXECUTE ON FUNCTION define_topic(text, text, integer), create_operator(text, integer, boolean, text[]),
    real_user_message(bigint, text, bigint, text), _chatlab_deadline(timestamptz, integer, double precision[]),
    assign_chat_to_operator(bigint, text, double precision, bigint, double precision, double precision[]) FROM PUBLIC;
ALTER FUNCTION define_topic(text, text, integer) SECURITY DEFINER;
ALTER FUNCTION create_operator(text, integer, boolean, text[]) SECURITY DEFINER;
ALTER FUNCTION real_user_message(bigint, text, bigint, text) SECURITY DEFINER;
ALTER FUNCTION assign_chat_to_operator(bigint, text, double precision, bigint, double precision, double precision[])
    SECURITY DEFINER;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'chatlab_app') THEN
        GRANT EXECUTE ON FUNCTION define_topic(text, text, integer), create_operator(text, integer, boolean, text[]),
            real_user_message(bigint, text, bigint, text),
            assign_chat_to_operator(bigint, text, double precision, bigint, double precision, double precision[])
            TO chatlab_app;
    END IF;
END
$$;
