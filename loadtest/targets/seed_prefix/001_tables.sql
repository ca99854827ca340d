-- 001: the live-chat system's base tables, as the seed's pre-fix Supabase app had them.
--
-- Operators, chats, messages, and the assignment history (one chat_assignments row per
-- time an operator held a chat).  UUID primary keys from gen_random_uuid() (built into
-- PostgreSQL 13+).  No schema names: the caller sets search_path to the target schema.
-- A chat is "held" while assigned_operator_id is set, and "open" while is_active.

CREATE TABLE operators (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name             text        NOT NULL,
    is_online        boolean     NOT NULL DEFAULT true,
    max_chats        integer     NOT NULL DEFAULT 1,
    last_activity_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chats (
    id                   uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    real_user_id         uuid        NOT NULL,
    assigned_operator_id uuid        REFERENCES operators (id),
    is_active            boolean     NOT NULL DEFAULT true,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    last_user_message_at timestamptz
);

CREATE TABLE messages (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    chat_id     uuid        NOT NULL REFERENCES chats (id),
    sender_type text        NOT NULL CHECK (sender_type IN ('real_user', 'operator')),
    sender_id   uuid        NOT NULL,
    body        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chat_assignments (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    chat_id        uuid        NOT NULL REFERENCES chats (id),
    operator_id    uuid        NOT NULL REFERENCES operators (id),
    assigned_at    timestamptz NOT NULL,
    released_at    timestamptz,
    release_reason text
);

-- The chats an operator holds (capacity counts, releases).
CREATE INDEX chats_assigned_operator_idx ON chats (assigned_operator_id)
    WHERE assigned_operator_id IS NOT NULL;
-- The pre-fix queue: open, unheld chats, oldest first.
CREATE INDEX chats_unassigned_queue_idx ON chats ((coalesce(last_user_message_at, created_at)), id)
    WHERE is_active AND assigned_operator_id IS NULL;
CREATE INDEX messages_chat_idx ON messages (chat_id, created_at);
CREATE INDEX chat_assignments_chat_idx ON chat_assignments (chat_id, assigned_at);
CREATE INDEX chat_assignments_operator_idx ON chat_assignments (operator_id, assigned_at);
-- The open hold of a chat (released_at IS NULL); not UNIQUE on purpose: the lab measures
-- whether an implementation ever lets two operators hold one chat, it does not forbid it.
CREATE INDEX chat_assignments_open_idx ON chat_assignments (chat_id)
    WHERE released_at IS NULL;
