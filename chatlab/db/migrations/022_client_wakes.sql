-- 022: wake the clients instead of making them poll — NOTIFY chatlab_news when something an operator's
-- or a real user's client waits for has happened.
--
-- Why: the simulation's operator is woken at once when a chat is given to it, when a chat leaves it
-- (a slot is free) or when the user of a chat it holds writes (legacy), and its real user is woken
-- at once by the operator's answer.  Clients that poll for these see them up to a poll period late,
-- which the load test multiplies by its time scale (2 scenario seconds per look at K = 60).  This
-- trigger tells them instead, on one channel chatlab_news, with the payload '<schema>:<kind>:<id>':
--   a:<operator>  a chat was given to the operator (work for its worker);
--   f:<operator>  a chat left the operator: replied, handed back, released, ended (a slot is free);
--   w:<operator>  the user of a chat the operator holds wrote (legacy: work for its worker);
--   c:<chat>      an operator answered the chat (its real user reads the answer).
-- The kinds let a client wake only the loop the model would wake (an operator's own assignment
-- must not make its poller ask twice).  As 021's
-- chatlab_work it fires only in sessions that opted in (SET chatlab.notify = on): a NOTIFY serialises
-- commits on a server-wide lock, and a client that does not listen must not pay for it.

CREATE FUNCTION _chatlab_notify_news() RETURNS trigger
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_op   bigint := NEW.operator_id;
    v_kind text   := CASE WHEN NEW.event = 'assign' THEN 'a' WHEN NEW.event = 'user_message' THEN 'w' ELSE 'f' END;
BEGIN
    IF NEW.event = 'user_message' THEN  -- a message to a chat somebody holds (legacy): work for the holder
        SELECT c.assigned_operator_id INTO v_op FROM chats c WHERE c.id = NEW.chat_id;
    END IF;
    IF v_op IS NOT NULL THEN
        PERFORM pg_notify('chatlab_news', current_schema() || ':' || v_kind || ':' || v_op);
    END IF;
    IF NEW.event = 'operator_reply' THEN
        PERFORM pg_notify('chatlab_news', current_schema() || ':c:' || NEW.chat_id);
    END IF;
    RETURN NULL;
END
$$;

-- assign: a chat for its new holder; from assigned: a chat left its holder (reply, hand-back, a
-- release, the end); a user message that keeps the chat assigned: its holder has work.
CREATE TRIGGER chat_events_notify_news AFTER INSERT ON chat_events FOR EACH ROW
    WHEN (NEW.chat_id IS NOT NULL
          AND (NEW.event = 'assign' OR NEW.from_state = 'assigned')
          AND current_setting('chatlab.notify', true) = 'on')
    EXECUTE FUNCTION _chatlab_notify_news();

REVOKE EXECUTE ON FUNCTION _chatlab_notify_news() FROM PUBLIC;
