-- 017 (lab): least privilege.  An application connects as a member of role chatlab_app and
-- may only call the chat API functions and read the summary view: no direct reads or writes
-- of the tables, no calls of the internal _chatlab_* helpers.  The API functions run with
-- their owner's rights (SECURITY DEFINER), which is safe only because every function pins
-- search_path to this schema with pg_temp last (see 015): a caller cannot shadow a table or
-- function with its own temp objects.  Operators read a chat's messages only while they
-- hold it (operator_chat_messages).
--
-- chatlab_app is cluster-wide; creating it is skipped (with a notice) where the migrating
-- user may not create roles (some managed servers): the functions still work, the grants
-- are then the DBA's job.

DO $$
BEGIN
    CREATE ROLE chatlab_app NOLOGIN;
EXCEPTION
    WHEN duplicate_object THEN NULL;
    WHEN insufficient_privilege THEN RAISE NOTICE 'chatlab: cannot create role chatlab_app; skipping grants';
END
$$;

-- An operator reads the messages of a chat only while it is assigned to them.
-- CL001 unknown operator, CL002 unknown chat, CL003 not this operator's chat.
CREATE FUNCTION operator_chat_messages(p_operator_id bigint, p_chat_id bigint)
RETURNS TABLE (message_id bigint, sender_type text, sender_id bigint, body text, sent_at timestamptz)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_holder bigint;
BEGIN
    PERFORM _chatlab_check_id('operator id', p_operator_id);
    PERFORM _chatlab_check_id('chat id', p_chat_id);
    IF NOT EXISTS (SELECT 1 FROM operators WHERE id = p_operator_id) THEN
        RAISE EXCEPTION 'unknown operator %', p_operator_id USING ERRCODE = 'CL001';
    END IF;
    SELECT c.assigned_operator_id INTO v_holder FROM chats c WHERE c.id = p_chat_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown chat %', p_chat_id USING ERRCODE = 'CL002';
    END IF;
    IF v_holder IS DISTINCT FROM p_operator_id THEN
        RAISE EXCEPTION 'operator % cannot read chat %: it is not assigned to this operator', p_operator_id, p_chat_id
            USING ERRCODE = 'CL003';
    END IF;
    RETURN QUERY
        SELECT m.id, m.sender_type, m.sender_id, m.body, m.created_at
        FROM messages m WHERE m.chat_id = p_chat_id ORDER BY m.id;
END
$$;

-- Checks for `chatlab db verify`, next to chat_state_verification().
CREATE FUNCTION chat_access_verification()
RETURNS TABLE (check_name text, passed boolean, detail text)
LANGUAGE plpgsql STABLE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_bad text;
BEGIN
    SELECT string_agg(p.proname, ', ' ORDER BY p.proname) INTO v_bad
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = current_schema()
      AND has_function_privilege('public', p.oid, 'EXECUTE');
    check_name := 'no function executable by PUBLIC'; passed := v_bad IS NULL;
    detail := coalesce('executable by anyone: ' || v_bad, 'only owner and chatlab_app');
    RETURN NEXT;

    SELECT string_agg(c.relname, ', ' ORDER BY c.relname) INTO v_bad
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind = 'r'
      AND (has_table_privilege('public', c.oid, 'SELECT') OR has_table_privilege('public', c.oid, 'UPDATE'));
    check_name := 'no table readable or writable by PUBLIC'; passed := v_bad IS NULL;
    detail := coalesce('open tables: ' || v_bad, 'tables reachable only through the functions');
    RETURN NEXT;

    SELECT string_agg(f::text, ', ') INTO v_bad
    FROM chat_api_functions() f JOIN pg_proc p ON p.oid = f
    WHERE p.proname NOT IN ('chatlab_now', 'chat_next_state', 'chat_state_verification', 'chat_access_verification')
      AND NOT p.prosecdef;
    check_name := 'API functions run with definer rights and a pinned search_path'; passed := v_bad IS NULL;
    detail := coalesce('not SECURITY DEFINER: ' || v_bad, 'SECURITY DEFINER, search_path pinned (checked above)');
    RETURN NEXT;
END
$$;

-- The API: what chatlab_app may call.  Everything else stays owner-only.
CREATE FUNCTION chat_api_functions() RETURNS SETOF regprocedure
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT unnest(ARRAY[
        'create_operator(text, integer, boolean)',
        'set_operator_online(bigint, boolean)',
        'touch_operator(bigint)',
        'real_user_message(bigint, text, bigint)',
        'assign_chat_to_operator(bigint, text, double precision, bigint)',
        'operator_message(bigint, bigint, text)',
        'unassign_chat(bigint, bigint)',
        'end_chat(bigint, text)',
        'release_idle_operator_chats(double precision)',
        'release_and_reassign_chat(bigint, text)',
        'detect_stuck_chats(double precision)',
        'get_assignment_queue_status()',
        'chat_next_state(text, text, boolean, bigint)',
        'operator_chat_messages(bigint, bigint)',
        'chatlab_now()',
        'chat_state_verification()',
        'chat_access_verification()'
    ]::regprocedure[])
$$;

-- Apply: definer rights for the API functions that touch tables; EXECUTE only for chatlab_app.
DO $$
DECLARE
    v_fn regprocedure;
    v_schema text := current_schema();
    v_has_role boolean := EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'chatlab_app');
BEGIN
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM PUBLIC', v_schema);
    EXECUTE format('REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA %I FROM PUBLIC', v_schema);
    -- functions of later migrations start closed too
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC', v_schema);
    FOR v_fn IN SELECT * FROM chat_api_functions() LOOP
        IF v_fn::text NOT LIKE 'chatlab_now%' AND v_fn::text NOT LIKE 'chat_next_state%'
           AND v_fn::text NOT LIKE 'chat_state_verification%' AND v_fn::text NOT LIKE 'chat_access_verification%' THEN
            EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER', v_fn);
        END IF;
        IF v_has_role THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO chatlab_app', v_fn);
        END IF;
    END LOOP;
    IF v_has_role THEN
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO chatlab_app', v_schema);
        EXECUTE format('GRANT SELECT ON %I.chat_state_summary TO chatlab_app', v_schema);
    END IF;
END
$$;
