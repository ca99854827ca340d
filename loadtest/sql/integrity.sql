-- After a load test: did the real functions keep their promises under concurrency?
--   assignments        history rows (chat_assignments)
--   double_assigned    pairs of holds of the SAME chat whose [assigned_at, released_at)
--                      intervals overlap: a chat held by two operators at once (must be 0)
--   over_capacity      holds that began while the operator already held max_chats chats
--                      (must be 0)
WITH holds AS (
    SELECT id, chat_id, operator_id,
           tstzrange(assigned_at, coalesce(released_at, 'infinity'::timestamptz), '[)') AS span
    FROM chat_assignments
)
SELECT
    (SELECT count(*) FROM holds) AS assignments,
    (SELECT count(*) FROM holds a JOIN holds b
        ON a.chat_id = b.chat_id AND a.id < b.id AND a.span && b.span) AS double_assigned,
    (SELECT count(*) FROM holds a JOIN operators o ON o.id = a.operator_id
        WHERE (SELECT count(*) FROM holds b
               WHERE b.operator_id = a.operator_id AND b.span @> lower(a.span)) > o.max_chats) AS over_capacity
