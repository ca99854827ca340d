-- 021: push mode on the database — a dispatcher offers the queue to the operators in turn, woken by
-- LISTEN/NOTIFY instead of polling.
--
-- The rule is the simulation's (sim/system.py, ChatSystem.dispatch): while some chat waits,
-- go round the operators in id order, starting after the last one that took a chat, and ask
-- the assign function for each online one (the same policy, exclusion, capacity and routing
-- rules as a pull); a round in which nobody takes anything ends it.  The rotation point is one
-- row, locked for the dispatch, so several dispatchers at once take turns instead of
-- racing (and the claim itself is SKIP LOCKED as always: no chat to two operators).
--
-- Waking: a chat entering the queue, a chat leaving an operator (capacity freed) and an
-- operator logging in insert a chat_events row; a trigger then sends NOTIFY chatlab_work
-- (payload: the schema), but only from sessions that opted in with SET chatlab.notify = on
-- (a NOTIFY serialises commits on a server-wide lock; pull-mode clients never pay it).  Each
-- assignment a dispatch makes is also announced on chatlab_assigned ("<schema>:<operator id>"), for
-- operators' clients that want to read their inbox at once (not used by the load test yet).

CREATE TABLE dispatch_state (
    only_row         boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    last_operator_id bigint   -- the last operator a dispatch gave a chat (the next round starts after it)
) WITH (fillfactor = 50, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);
INSERT INTO dispatch_state DEFAULT VALUES;

CREATE FUNCTION _chatlab_notify_work() RETURNS trigger
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM pg_notify('chatlab_work', current_schema());
    RETURN NULL;
END
$$;

CREATE TRIGGER chat_events_notify_work AFTER INSERT ON chat_events FOR EACH ROW
    WHEN ((NEW.to_state = 'waiting_assignment' OR NEW.from_state = 'assigned' OR NEW.event = 'operator_online')
          AND current_setting('chatlab.notify', true) = 'on')
    EXECUTE FUNCTION _chatlab_notify_work();

CREATE FUNCTION dispatch_waiting_chats(
    p_policy         text               DEFAULT 'exclude_last',
    p_fallback_after double precision   DEFAULT 300,
    p_salt           bigint             DEFAULT 0,
    p_relax_after    double precision   DEFAULT NULL,
    p_sla_targets    double precision[] DEFAULT NULL,
    p_sticky_for     double precision   DEFAULT NULL,
    p_fair_limit     integer            DEFAULT NULL,
    p_fair_window    double precision   DEFAULT 3600
) RETURNS TABLE (operator_id bigint, chat_id bigint)
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_after    bigint;
    v_start    bigint;
    v_op       bigint;
    v_chat     bigint;
    v_progress boolean := true;
BEGIN
    SELECT d.last_operator_id INTO v_after FROM dispatch_state d FOR UPDATE;  -- one dispatch at a time
    WHILE v_progress AND EXISTS (SELECT 1 FROM chats c WHERE c.is_active AND c.assigned_operator_id IS NULL) LOOP
        v_progress := false;
        v_start := coalesce(v_after, 0);
        FOR v_op IN SELECT o.id FROM operators o WHERE o.is_online ORDER BY (o.id <= v_start), o.id LOOP
            v_chat := assign_chat_to_operator(v_op, p_policy, p_fallback_after, p_salt, p_relax_after, p_sla_targets,
                                              p_sticky_for, p_fair_limit, p_fair_window);
            IF v_chat IS NOT NULL THEN
                operator_id := v_op;
                chat_id := v_chat;
                RETURN NEXT;
                v_after := v_op;
                v_progress := true;
                PERFORM pg_notify('chatlab_assigned', current_schema() || ':' || v_op);
            END IF;
        END LOOP;
    END LOOP;
    UPDATE dispatch_state SET last_operator_id = v_after WHERE last_operator_id IS DISTINCT FROM v_after;
END
$$;

-- Access (017): definer rights, only chatlab_app may call
REVOKE EXECUTE ON FUNCTION _chatlab_notify_work(),
    dispatch_waiting_chats(text, double precision, bigint, double precision, double precision[], double precision,
                           integer, double precision) FROM PUBLIC;
ALTER FUNCTION dispatch_waiting_chats(text, double precision, bigint, double precision, double precision[],
                                      double precision, integer, double precision) SECURITY DEFINER;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'chatlab_app') THEN
        GRANT EXECUTE ON FUNCTION dispatch_waiting_chats(text, double precision, bigint, double precision,
                                                         double precision[], double precision, integer,
                                                         double precision) TO chatlab_app;
    END IF;
END
$$;
