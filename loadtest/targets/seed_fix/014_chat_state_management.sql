-- 014: chat state management (the seed's migration 014).
--
-- Every chat gets an explicit state:
--   waiting_assignment      needs an operator                  (assignable)
--   assigned                an operator holds it               (not assignable)
--   waiting_real_user_reply an operator replied, user's turn   (not assignable)
--   completed               ended                              (not assignable)
-- plus last_operator_id (who last handled it: the assign function skips the chat for
-- that operator), operator_replied_at, and waiting_since (when it last started waiting
-- for an operator: the queue order).  Existing chats are migrated from the pre-fix
-- columns and history.

ALTER TABLE chats
    ADD COLUMN chat_state text NOT NULL DEFAULT 'waiting_assignment',
    ADD COLUMN last_operator_id uuid,
    ADD COLUMN operator_replied_at timestamptz,
    ADD COLUMN waiting_since timestamptz;

ALTER TABLE chats
    ADD CONSTRAINT chats_chat_state_check
    CHECK (chat_state IN ('waiting_assignment', 'assigned', 'waiting_real_user_reply', 'completed'));

-- Backfill (a no-op on a fresh schema).  The last operator is the latest holder in the
-- history, or the sender of the latest operator message.
UPDATE chats c
   SET last_operator_id = coalesce(
           (SELECT a.operator_id FROM chat_assignments a
             WHERE a.chat_id = c.id ORDER BY a.assigned_at DESC, a.id DESC LIMIT 1),
           (SELECT m.sender_id FROM messages m
             WHERE m.chat_id = c.id AND m.sender_type = 'operator'
             ORDER BY m.created_at DESC, m.id DESC LIMIT 1)),
       operator_replied_at =
           (SELECT max(m.created_at) FROM messages m
             WHERE m.chat_id = c.id AND m.sender_type = 'operator');

-- A pre-fix chat whose latest message is the operator's was "unassigned" but really
-- waits for the real user; the others wait for an operator, or are held, or closed.
UPDATE chats c
   SET chat_state = CASE
           WHEN NOT c.is_active THEN 'completed'
           WHEN c.assigned_operator_id IS NOT NULL THEN 'assigned'
           WHEN (SELECT m.sender_type FROM messages m WHERE m.chat_id = c.id
                  ORDER BY m.created_at DESC, m.id DESC LIMIT 1) = 'operator'
               THEN 'waiting_real_user_reply'
           ELSE 'waiting_assignment'
       END;

UPDATE chats
   SET waiting_since = coalesce(last_user_message_at, created_at)
 WHERE chat_state = 'waiting_assignment';

-- The fixed queue: assignable chats, longest waiting first.
CREATE INDEX idx_chats_waiting_queue ON chats (waiting_since, id)
    WHERE is_active AND chat_state = 'waiting_assignment';
CREATE INDEX idx_chats_chat_state ON chats (chat_state);
CREATE INDEX idx_chats_last_operator ON chats (last_operator_id)
    WHERE last_operator_id IS NOT NULL;
-- The pre-fix queue index has no use any more.
DROP INDEX chats_unassigned_queue_idx;

-- State distribution (every state, also those with no chat).
CREATE VIEW chat_state_summary AS
SELECT s.chat_state,
       count(c.id)                                          AS chat_count,
       count(c.id) FILTER (WHERE c.is_active)               AS active_count,
       count(c.assigned_operator_id)                        AS with_operator_count,
       min(c.waiting_since)
           FILTER (WHERE c.chat_state = 'waiting_assignment')      AS oldest_waiting_since,
       min(c.operator_replied_at)
           FILTER (WHERE c.chat_state = 'waiting_real_user_reply') AS oldest_operator_replied_at,
       max(c.updated_at)                                    AS last_updated_at
  FROM (VALUES (1, 'waiting_assignment'),
               (2, 'assigned'),
               (3, 'waiting_real_user_reply'),
               (4, 'completed')) AS s (ord, chat_state)
  LEFT JOIN chats c ON c.chat_state = s.chat_state
 GROUP BY s.ord, s.chat_state
 ORDER BY s.ord;
