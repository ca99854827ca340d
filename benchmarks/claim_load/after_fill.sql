-- New chats after the filled ids; fresh statistics and visibility for the queue.
SELECT setval(pg_get_serial_sequence('chats', 'id'), (SELECT max(id) FROM chats))
