-- What an operator's client sees: whether it is (still) logged in, and the chats it holds
-- with whether each has a user message to answer (pending) and since when.  Under the
-- legacy policy a held chat may have nothing to answer (premature assignment): it just
-- occupies a slot until its user writes, as in the simulation.
SELECT o.is_online,
       c.id AS chat_id,
       c.last_user_message_at > coalesce(c.operator_replied_at, '-infinity'::timestamptz) AS pending,
       c.last_user_message_at AS pending_since
FROM operators o
LEFT JOIN chats c ON c.assigned_operator_id = o.id AND c.chat_state = 'assigned'
WHERE o.id = %(operator_id)s
ORDER BY c.last_user_message_at, c.id
