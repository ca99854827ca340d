VACUUM (ANALYZE) chats, operators, chat_assignments
