-- What a real user's client sees of its chat: the state, and whether the operator has
-- answered its last message (an operator message after the user's last message).
SELECT chat_state, operator_replied_at, last_user_message_at
FROM chats
WHERE id = %(chat_id)s
