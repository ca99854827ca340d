-- %(n)s completed chats (ids 1..n), written directly with triggers off (session_replication_role
-- = replica, set by the caller): history the claim must not feel.
INSERT INTO chats (id, real_user_id, chat_state, is_active, waiting_since, last_user_message_at, created_at, updated_at)
SELECT g, g, 'completed', false, now() - interval '30 days', now() - interval '30 days',
       now() - interval '30 days', now() - interval '30 days'
FROM generate_series(1, %(n)s::bigint) g
