-- The waiting queue: chats %(first)s..%(last)s, oldest first, real user id = chat id; the first
-- %(head)s of them were last answered by operator %(head_operator)s (the adversarial head).
INSERT INTO chats (id, real_user_id, waiting_since, last_user_message_at, created_at, updated_at, last_operator_id)
SELECT g, g, now() - interval '1 day' + (g - %(first)s::bigint) * interval '1 millisecond', now(), now(), now(),
       CASE WHEN g < %(first)s::bigint + %(head)s::bigint THEN %(head_operator)s::bigint END
FROM generate_series(%(first)s::bigint, %(last)s::bigint) g
