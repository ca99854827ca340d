-- 019 (lab): real floors — operator skills, and chat topics with a required skill, a priority
-- class and a capacity weight (how many units of an operator's max_chats a chat of it takes).
-- Migration 020's assign function applies them (docs/semantics.md, "Routing"; sim/routing.py
-- is the reference).  New errors: CL010 unknown topic.

-- ---------------------------------------------------------------------------------------
-- Schema
-- ---------------------------------------------------------------------------------------

ALTER TABLE operators ADD COLUMN skills text[] NOT NULL DEFAULT '{}';

CREATE TABLE topics (
    name     text PRIMARY KEY CHECK (name ~ '\S' AND length(name) <= 100),
    skill    text CHECK (skill IS NULL OR (skill ~ '\S' AND length(skill) <= 100)),
    priority integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 1000),
    weight   integer NOT NULL DEFAULT 1 CHECK (weight BETWEEN 1 AND 100)
);

-- Copied from the topic when the chat is opened: a topic redefined later does not move
-- the chats already in the queue.
ALTER TABLE chats
    ADD COLUMN topic    text REFERENCES topics (name),
    ADD COLUMN skill    text,
    ADD COLUMN priority integer NOT NULL DEFAULT 0,
    ADD COLUMN weight   integer NOT NULL DEFAULT 1 CHECK (weight BETWEEN 1 AND 100);

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

-- Define (or redefine) a topic: new chats of it need p_skill (NULL: anyone), have class
-- p_priority and take p_weight units of capacity.  CL006 on a bad name, skill, priority or weight.
CREATE FUNCTION define_topic(p_name text, p_skill text DEFAULT NULL, p_priority integer DEFAULT 0,
                             p_weight integer DEFAULT 1)
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
    IF p_weight IS NULL OR p_weight < 1 OR p_weight > 100 THEN
        RAISE EXCEPTION 'weight must be an integer from 1 to 100, got %', coalesce(p_weight::text, 'NULL')
            USING ERRCODE = 'CL006';
    END IF;
    INSERT INTO topics (name, skill, priority, weight) VALUES (p_name, p_skill, p_priority, p_weight)
    ON CONFLICT (name) DO UPDATE SET skill = excluded.skill, priority = excluded.priority, weight = excluded.weight;
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
-- topic's skill, class and weight on the new chat).  On an existing chat p_topic is ignored.
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
    UPDATE chats SET topic = v_topic.name, skill = v_topic.skill, priority = v_topic.priority, weight = v_topic.weight
    WHERE id = v_id;
    RETURN v_id;
END
$$;

-- ---------------------------------------------------------------------------------------
-- Access (017): the new API functions run with definer rights, only chatlab_app may call them
-- ---------------------------------------------------------------------------------------

-- The API by name (every overload), so a migration that adds an overload needs no new list
-- (release_unanswered_chats is migration 020's).
CREATE OR REPLACE FUNCTION chat_api_functions() RETURNS SETOF regprocedure
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT p.oid::regprocedure FROM pg_proc p
    WHERE p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
      AND p.proname = ANY ('{create_operator, define_topic, set_operator_online, touch_operator, real_user_message,
          assign_chat_to_operator, operator_message, unassign_chat, end_chat, release_idle_operator_chats,
          release_and_reassign_chat, release_unanswered_chats, detect_stuck_chats, get_assignment_queue_status, chat_next_state,
          operator_chat_messages, chatlab_now, chat_state_verification, chat_access_verification}'::text[])
$$;

REVOKE EXECUTE ON FUNCTION define_topic(text, text, integer, integer), create_operator(text, integer, boolean, text[]),
    real_user_message(bigint, text, bigint, text) FROM PUBLIC;
ALTER FUNCTION define_topic(text, text, integer, integer) SECURITY DEFINER;
ALTER FUNCTION create_operator(text, integer, boolean, text[]) SECURITY DEFINER;
ALTER FUNCTION real_user_message(bigint, text, bigint, text) SECURITY DEFINER;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'chatlab_app') THEN
        GRANT EXECUTE ON FUNCTION define_topic(text, text, integer, integer), create_operator(text, integer, boolean, text[]),
            real_user_message(bigint, text, bigint, text) TO chatlab_app;
    END IF;
END
$$;
