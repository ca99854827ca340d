-- 020 (lab): the routing rules real products ship, applied by every policy
-- (docs/semantics.md, "Routing"; sim/routing.py is the reference, with the same choices):
--   * capacity by weight: a chat takes its topic's weight (019) in units of max_chats; an
--     operator may take it only if it fits;
--   * skills: an operator is offered only chats whose skill it has, unless the chat has waited
--     p_relax_after seconds (skill relaxation); a chat without a skill goes to anyone;
--   * known agent (p_sticky_for): a returning user's new chat, never handled yet, is held for
--     the operator of the user's previous chat for p_sticky_for seconds after it was opened,
--     while that operator is online and the chat fits; it is offered to that operator first;
--   * fair-distribution limit (p_fair_limit, p_fair_window): an operator given p_fair_limit
--     chats in the last p_fair_window seconds gets none for now;
--   * order: priority class (higher first), then the policy's own order; with p_sla_targets
--     (seconds per class, index = class + 1) by deadline waiting_since + target instead of
--     waiting time (random keeps its own order);
-- and the no-answer timeout, release_unanswered_chats: a chat held without a reply for
-- reassign_after seconds goes back to the queue, its holder excluded by the fix's rule.
-- The assign function also knows sim/variants.py's buggy variants, each reproducing a bug
-- real products' users reported, as legacy reproduces the seed's (chatlab bugs):
-- least_loaded_lifetime, least_loaded_by_creation, newest_first, sticky_offline and
-- exclude_last_unlocked (the fix without the operator-row lock: a race only SQL can show).

-- ---------------------------------------------------------------------------------------
-- Known agent: each new chat remembers the operator of the same user's previous chat
-- ---------------------------------------------------------------------------------------

ALTER TABLE chats ADD COLUMN sticky_operator_id bigint REFERENCES operators (id);
CREATE INDEX chats_real_user_idx ON chats (real_user_id, id);

-- Whichever function opens the chat: the previous chat's holder, else its last operator.
CREATE FUNCTION chats_known_agent() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    SELECT coalesce(c.assigned_operator_id, c.last_operator_id) INTO NEW.sticky_operator_id
    FROM chats c WHERE c.real_user_id = NEW.real_user_id ORDER BY c.id DESC LIMIT 1;
    RETURN NEW;
END
$$;

CREATE TRIGGER chats_known_agent BEFORE INSERT ON chats FOR EACH ROW EXECUTE FUNCTION chats_known_agent();

-- ---------------------------------------------------------------------------------------
-- Assignment with the routing rules (replaces 015's; the same policies, the same claim)
-- ---------------------------------------------------------------------------------------

DROP FUNCTION assign_chat_to_operator(bigint, text, double precision, bigint);

-- A chat's SLA deadline (NULL: no target for its class, i.e. last).
CREATE FUNCTION _chatlab_deadline(p_since timestamptz, p_priority integer, p_targets double precision[])
RETURNS timestamptz
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT p_since + make_interval(secs => p_targets[p_priority + 1]) $$;

-- Capacity in use: the weights of the chats an operator holds.
CREATE FUNCTION _chatlab_load(p_operator_id bigint) RETURNS bigint
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT coalesce(sum(c.weight), 0) FROM chats c
    WHERE c.chat_state = 'assigned' AND c.assigned_operator_id = p_operator_id
$$;

-- Give operator p_operator_id a chat under p_policy with the routing rules; return its id, or
-- NULL when the operator is offline, at capacity, at its fair limit, or nothing is eligible.
-- The policies and the claim are 015's (see there: READ COMMITTED, the operator row locked,
-- one chat claimed with ORDER BY ... LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED); the rules are
-- written out in each query (a helper function with a pinned search_path is called per row,
-- not inlined).  Without a known-agent window the claims keep 019's index order; with one,
-- a chat held for the requester sorts first, so one query serves every policy.
CREATE FUNCTION assign_chat_to_operator(
    p_operator_id    bigint,
    p_policy         text               DEFAULT 'exclude_last',
    p_fallback_after double precision   DEFAULT 300,
    p_salt           bigint             DEFAULT 0,
    p_relax_after    double precision   DEFAULT NULL,
    p_sla_targets    double precision[] DEFAULT NULL,
    p_sticky_for     double precision   DEFAULT NULL,
    p_fair_limit     integer            DEFAULT NULL,
    p_fair_window    double precision   DEFAULT 3600
) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_policy   text             := coalesce(p_policy, 'exclude_last');
    v_fallback double precision := coalesce(p_fallback_after, 300);
    v_salt     bigint           := coalesce(p_salt, 0);
    v_window   double precision := coalesce(p_fair_window, 3600);
    v_sla      boolean          := p_sla_targets IS NOT NULL;
    v_sticky   boolean          := p_sticky_for IS NOT NULL;
    v_op       operators;
    v_ahead    record;
    v_room     bigint;                          -- the requester's free capacity (units)
    v_now      timestamptz;
    v_cutoff   timestamptz      := '-infinity';  -- exclude_last_fallback: waited since at most this
    v_relax    timestamptz      := '-infinity';  -- skill relaxation: waited since at most this
    v_held     timestamptz      := 'infinity';   -- known agent: opened after this (none without the rule)
    v_fair     timestamptz;                      -- fair limit: assignments after this count
    v_taken    bigint[]         := '{}';
    v_pick     bigint;
    v_chat     bigint;
    v_from     text;
    v_at       timestamptz;
BEGIN
    IF v_policy NOT IN ('legacy', 'exclude_last', 'exclude_last_fallback', 'round_robin',
                        'least_loaded', 'longest_idle', 'random', 'least_loaded_lifetime', 'least_loaded_by_creation',
                        'newest_first', 'sticky_offline', 'exclude_last_unlocked') THEN
        RAISE EXCEPTION 'unknown policy %; expected one of: legacy, exclude_last, exclude_last_fallback, round_robin, least_loaded, longest_idle, random (or a buggy variant: least_loaded_lifetime, least_loaded_by_creation, newest_first, sticky_offline, exclude_last_unlocked)',
                        quote_literal(v_policy) USING ERRCODE = 'CL007';
    END IF;
    IF v_fallback < 0 OR v_fallback = 'NaN'::float8 THEN
        RAISE EXCEPTION 'fallback_after must be >= 0 seconds, got %', v_fallback USING ERRCODE = 'CL006';
    END IF;
    IF p_relax_after < 0 OR p_relax_after = 'NaN'::float8 OR p_relax_after > 1e9 THEN
        RAISE EXCEPTION 'relax_after must be from 0 to 1e9 seconds, got %', p_relax_after USING ERRCODE = 'CL006';
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(p_sla_targets) t WHERE t IS NULL OR t < 0 OR t = 'NaN'::float8 OR t > 1e9) THEN
        RAISE EXCEPTION 'SLA targets must be from 0 to 1e9 seconds, got %', p_sla_targets USING ERRCODE = 'CL006';
    END IF;
    IF p_sticky_for < 0 OR p_sticky_for = 'NaN'::float8 OR p_sticky_for > 1e9 THEN
        RAISE EXCEPTION 'sticky_for must be from 0 to 1e9 seconds, got %', p_sticky_for USING ERRCODE = 'CL006';
    END IF;
    IF v_window < 0 OR v_window = 'NaN'::float8 OR v_window > 1e9 THEN
        RAISE EXCEPTION 'fair_window must be from 0 to 1e9 seconds, got %', v_window USING ERRCODE = 'CL006';
    END IF;
    IF p_fair_limit < 1 THEN
        RAISE EXCEPTION 'fair_limit must be an integer >= 1, got %', p_fair_limit USING ERRCODE = 'CL006';
    END IF;
    IF v_policy = 'exclude_last_unlocked' THEN  -- the variant's bug: the operator row is read, not locked
        PERFORM _chatlab_check_id('operator id', p_operator_id);
        SELECT * INTO v_op FROM operators WHERE id = p_operator_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown operator %', p_operator_id USING ERRCODE = 'CL001';
        END IF;
    ELSE
        v_op := _chatlab_lock_operator(p_operator_id);
    END IF;
    v_now := chatlab_now();
    v_fair := v_now - make_interval(secs => v_window);
    v_room := v_op.max_chats - (SELECT coalesce(sum(c.weight), 0) FROM chats c  -- _chatlab_load, inline
                                WHERE c.chat_state = 'assigned' AND c.assigned_operator_id = p_operator_id);
    IF NOT v_op.is_online OR v_room <= 0 OR (SELECT count(*) FROM chat_assignments a
            WHERE a.operator_id = p_operator_id AND a.assigned_at > v_fair) >= p_fair_limit THEN
        RETURN NULL;  -- offline, full or over its limit: no work, and no error (asking is not a mistake)
    END IF;
    IF v_policy = 'exclude_last_fallback' AND v_fallback <= 1e10 THEN
        v_cutoff := v_now - make_interval(secs => v_fallback);
    END IF;
    IF p_relax_after IS NOT NULL THEN
        v_relax := v_now - make_interval(secs => p_relax_after);
    END IF;
    IF v_sticky THEN
        v_held := v_now - make_interval(secs => p_sticky_for);
    END IF;

    IF v_policy IN ('round_robin', 'least_loaded', 'longest_idle', 'least_loaded_lifetime',
                    'least_loaded_by_creation') THEN
        -- Replay the greedy matching up to the requester: each operator ahead of it takes the
        -- first chat it may have (the fix's exclusion, its skills, what fits, nobody else's
        -- held chat), a chat held for it first, then queue order.
        FOR v_ahead IN
            SELECT o.id, o.skills, o.max_chats - load.n AS room FROM operators o
            CROSS JOIN LATERAL (SELECT coalesce(sum(c.weight), 0) AS n FROM chats c
                                WHERE c.chat_state = 'assigned' AND c.assigned_operator_id = o.id) load
            WHERE o.is_online AND load.n < o.max_chats
              AND (p_fair_limit IS NULL OR (SELECT count(*) FROM chat_assignments a
                                            WHERE a.operator_id = o.id AND a.assigned_at > v_fair) < p_fair_limit)
            ORDER BY CASE WHEN v_policy IN ('least_loaded', 'least_loaded_by_creation') THEN load.n
                          WHEN v_policy = 'least_loaded_lifetime'
                          THEN (SELECT count(*) FROM chat_assignments a WHERE a.operator_id = o.id)
                          ELSE 0 END,
                     CASE WHEN v_policy = 'least_loaded_by_creation' THEN NULL
                          WHEN v_policy = 'longest_idle' THEN o.last_activity_at ELSE o.last_assigned_at END
                         ASC NULLS FIRST,
                     o.id
        LOOP
            EXIT WHEN v_ahead.id = p_operator_id;
            SELECT c.id INTO v_pick FROM chats c
            WHERE c.chat_state = 'waiting_assignment' AND c.last_operator_id IS DISTINCT FROM v_ahead.id
              AND c.id <> ALL (v_taken) AND c.weight <= v_ahead.room
              AND (c.skill IS NULL OR c.skill = ANY (v_ahead.skills) OR c.waiting_since <= v_relax)
              AND (NOT v_sticky OR NOT (
                  c.last_operator_id IS NULL AND c.created_at > v_held AND c.sticky_operator_id IS NOT NULL
                  AND c.sticky_operator_id <> v_ahead.id
                  AND EXISTS (SELECT 1 FROM operators s WHERE s.id = c.sticky_operator_id AND s.is_online
                                AND c.weight <= s.max_chats - _chatlab_load(s.id))))
            ORDER BY CASE WHEN c.sticky_operator_id = v_ahead.id AND c.last_operator_id IS NULL
                               AND c.created_at > v_held THEN 0 ELSE 1 END,
                     CASE WHEN v_sla THEN _chatlab_deadline(c.waiting_since, c.priority, p_sla_targets) END NULLS LAST,
                     CASE WHEN v_sla THEN 0 ELSE -c.priority END, CASE WHEN NOT v_sla THEN c.waiting_since END, c.id
            LIMIT 1;
            EXIT WHEN v_pick IS NULL AND NOT EXISTS (   -- queue used up: nobody further gets one
                SELECT 1 FROM chats c WHERE c.chat_state = 'waiting_assignment' AND c.id <> ALL (v_taken));
            IF v_pick IS NOT NULL THEN
                v_taken := v_taken || v_pick;
            END IF;
        END LOOP;
    END IF;

    -- The claim: one row, in queue order, skipping rows other callers hold.
    IF v_sticky THEN
        SELECT c.id, c.chat_state INTO v_chat, v_from FROM chats c
        WHERE (CASE WHEN v_policy = 'legacy' THEN c.is_active AND c.assigned_operator_id IS NULL
                    ELSE c.chat_state = 'waiting_assignment'
                         AND (c.last_operator_id IS DISTINCT FROM p_operator_id OR c.waiting_since <= v_cutoff) END)
          AND c.id <> ALL (v_taken) AND c.weight <= v_room
          AND (c.skill IS NULL OR c.skill = ANY (v_op.skills) OR c.waiting_since <= v_relax)
          AND NOT (c.last_operator_id IS NULL AND c.created_at > v_held AND c.sticky_operator_id IS NOT NULL
                   AND c.sticky_operator_id <> p_operator_id
                   AND EXISTS (SELECT 1 FROM operators s WHERE s.id = c.sticky_operator_id
                                 AND (v_policy = 'sticky_offline'  -- the variant's bug: held for anyone
                                      OR (s.is_online AND c.weight <= s.max_chats - _chatlab_load(s.id)))))
        ORDER BY CASE WHEN c.sticky_operator_id = p_operator_id AND c.last_operator_id IS NULL
                           AND c.created_at > v_held THEN 0 ELSE 1 END,
                 CASE WHEN v_sla AND v_policy NOT IN ('random', 'newest_first')
                      THEN _chatlab_deadline(c.waiting_since, c.priority, p_sla_targets) END NULLS LAST,
                 CASE WHEN NOT v_sla OR v_policy IN ('random', 'newest_first') THEN -c.priority END,
                 CASE WHEN v_policy = 'random' THEN md5(v_salt::text || ':' || c.id::text) END,
                 CASE WHEN v_policy = 'newest_first' THEN c.waiting_since END DESC,
                 CASE WHEN v_policy = 'newest_first' THEN c.id END DESC,
                 CASE WHEN NOT v_sla AND v_policy NOT IN ('random', 'newest_first') THEN c.waiting_since END,
                 c.id
        LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED;
    ELSIF v_policy = 'random' THEN
        SELECT c.id, c.chat_state INTO v_chat, v_from FROM chats c
        WHERE c.chat_state = 'waiting_assignment' AND c.last_operator_id IS DISTINCT FROM p_operator_id
          AND c.weight <= v_room AND (c.skill IS NULL OR c.skill = ANY (v_op.skills) OR c.waiting_since <= v_relax)
        ORDER BY c.priority DESC, md5(v_salt::text || ':' || c.id::text), c.id
        LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED;
    ELSIF v_policy = 'newest_first' THEN  -- the variant's bug: the newest waiting chat first
        SELECT c.id, c.chat_state INTO v_chat, v_from FROM chats c
        WHERE c.chat_state = 'waiting_assignment' AND c.last_operator_id IS DISTINCT FROM p_operator_id
          AND c.weight <= v_room AND (c.skill IS NULL OR c.skill = ANY (v_op.skills) OR c.waiting_since <= v_relax)
        ORDER BY c.priority DESC, c.waiting_since DESC, c.id DESC
        LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED;
    ELSIF v_sla THEN
        SELECT c.id, c.chat_state INTO v_chat, v_from FROM chats c
        WHERE (CASE WHEN v_policy = 'legacy' THEN c.is_active AND c.assigned_operator_id IS NULL
                    ELSE c.chat_state = 'waiting_assignment'
                         AND (c.last_operator_id IS DISTINCT FROM p_operator_id OR c.waiting_since <= v_cutoff) END)
          AND c.id <> ALL (v_taken) AND c.weight <= v_room
          AND (c.skill IS NULL OR c.skill = ANY (v_op.skills) OR c.waiting_since <= v_relax)
        ORDER BY _chatlab_deadline(c.waiting_since, c.priority, p_sla_targets) NULLS LAST, c.id
        LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED;
    ELSIF v_policy = 'legacy' THEN
        -- the pre-fix rule in the pre-fix columns: open and nobody holds it (= waiting_assignment
        -- or waiting_real_user_reply, by 014's constraints; matches chats_legacy_queue_idx)
        SELECT c.id, c.chat_state INTO v_chat, v_from FROM chats c
        WHERE c.is_active AND c.assigned_operator_id IS NULL
          AND c.weight <= v_room AND (c.skill IS NULL OR c.skill = ANY (v_op.skills) OR c.waiting_since <= v_relax)
        ORDER BY c.priority DESC, c.waiting_since, c.id
        LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED;
    ELSE  -- exclude_last, exclude_last_fallback and the operator-ordered policies
        SELECT c.id, c.chat_state INTO v_chat, v_from FROM chats c
        WHERE c.chat_state = 'waiting_assignment'
          AND (c.last_operator_id IS DISTINCT FROM p_operator_id OR c.waiting_since <= v_cutoff)
          AND c.id <> ALL (v_taken) AND c.weight <= v_room
          AND (c.skill IS NULL OR c.skill = ANY (v_op.skills) OR c.waiting_since <= v_relax)
        ORDER BY c.priority DESC, c.waiting_since, c.id
        LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED;
    END IF;
    IF v_chat IS NULL THEN
        RETURN NULL;
    END IF;

    v_at := chatlab_now();  -- after the chat lock: see 015's conventions
    PERFORM _chatlab_announce('assign', v_policy = 'legacy');
    UPDATE chats SET chat_state = 'assigned', assigned_operator_id = p_operator_id, updated_at = v_at
    WHERE id = v_chat;
    PERFORM _chatlab_announce(NULL);
    UPDATE operators SET last_assigned_at = v_at WHERE id = p_operator_id;
    INSERT INTO chat_assignments (chat_id, operator_id, assigned_at) VALUES (v_chat, p_operator_id, v_at);
    INSERT INTO chat_events (at, chat_id, operator_id, event, from_state, to_state)
    VALUES (v_at, v_chat, p_operator_id, 'assign', v_from, 'assigned');
    RETURN v_chat;
END
$$;

-- ---------------------------------------------------------------------------------------
-- No-answer timeout
-- ---------------------------------------------------------------------------------------

-- Every chat assigned p_after seconds ago or more and still unanswered (an answer moves it
-- out of 'assigned') goes back to the queue, keeping its place: event stuck_release, reason
-- no_answer; the holder becomes last_operator_id, so the fix's rule keeps it away (legacy
-- has no such rule).  Oldest assignment first.  Returns how many were released.
CREATE FUNCTION release_unanswered_chats(p_after double precision) RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
DECLARE
    v_at       timestamptz;
    v_chat     chats;
    v_released integer := 0;
BEGIN
    IF p_after IS NULL OR p_after < 0 OR p_after = 'NaN'::float8 OR p_after = 'Infinity'::float8 THEN
        RAISE EXCEPTION 'reassign_after must be a finite number of seconds >= 0, got %',
                        coalesce(p_after::text, 'NULL') USING ERRCODE = 'CL006';
    END IF;
    v_at := chatlab_now();
    FOR v_chat IN
        SELECT c.* FROM chats c
        JOIN chat_assignments a ON a.chat_id = c.id AND a.released_at IS NULL
        WHERE c.chat_state = 'assigned' AND a.assigned_at <= v_at - make_interval(secs => p_after)
        ORDER BY a.assigned_at, c.id
        FOR NO KEY UPDATE OF c
    LOOP
        PERFORM _chatlab_release(v_chat, 'stuck_release', 'no_answer', 'no_answer', v_at);
        v_released := v_released + 1;
    END LOOP;
    RETURN v_released;
END
$$;

-- ---------------------------------------------------------------------------------------
-- Monitoring by weight: free capacity and the capacity check count units, not chats
-- ---------------------------------------------------------------------------------------

-- 016's queue status, its operator columns counting units (the rest unchanged).
ALTER FUNCTION get_assignment_queue_status() RENAME TO _chatlab_queue_status_016;

CREATE FUNCTION get_assignment_queue_status()
RETURNS TABLE (
    waiting_chats            bigint,
    waiting_real_user_reply  bigint,
    assigned_chats           bigint,
    completed_chats          bigint,
    oldest_waiting_since     timestamptz,
    longest_wait_seconds     double precision,
    average_wait_seconds     double precision,
    online_operators         bigint,
    operators_with_capacity  bigint,
    free_capacity            bigint
)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    WITH ops AS (SELECT o.max_chats, _chatlab_load(o.id) AS active FROM operators o WHERE o.is_online)
    SELECT q.waiting_chats, q.waiting_real_user_reply, q.assigned_chats, q.completed_chats, q.oldest_waiting_since,
           q.longest_wait_seconds, q.average_wait_seconds, q.online_operators,
           (SELECT count(*) FROM ops WHERE active < max_chats),
           (SELECT coalesce(sum(greatest(max_chats - active, 0)), 0)::bigint FROM ops)
    FROM _chatlab_queue_status_016() q
$$;

-- 016's checks, its capacity check counting weights (the rest unchanged, in the same order).
ALTER FUNCTION chat_state_verification() RENAME TO _chatlab_state_verification_016;

CREATE FUNCTION chat_state_verification()
RETURNS TABLE (check_name text, passed boolean, detail text)
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT v.check_name,
           CASE WHEN v.check_name = 'operators within capacity' THEN w.n = 0 ELSE v.passed END,
           CASE WHEN v.check_name = 'operators within capacity'
                THEN format('%s operators over capacity by chat weight (offline ones must hold nothing)', w.n)
                ELSE v.detail END
    FROM _chatlab_state_verification_016() WITH ORDINALITY AS v (check_name, passed, detail, n)
    CROSS JOIN (SELECT count(*) AS n FROM operators o
                WHERE _chatlab_load(o.id) > CASE WHEN o.is_online THEN o.max_chats ELSE 0 END) w
    ORDER BY v.n
$$;

-- ---------------------------------------------------------------------------------------
-- Access (017): definer rights for the functions that change data, only chatlab_app may call
-- ---------------------------------------------------------------------------------------

REVOKE EXECUTE ON FUNCTION chats_known_agent(), _chatlab_deadline(timestamptz, integer, double precision[]),
    _chatlab_load(bigint), _chatlab_state_verification_016(), _chatlab_queue_status_016(), chat_state_verification(),
    get_assignment_queue_status(),
    release_unanswered_chats(double precision),
    assign_chat_to_operator(bigint, text, double precision, bigint, double precision, double precision[],
                            double precision, integer, double precision) FROM PUBLIC;
ALTER FUNCTION release_unanswered_chats(double precision) SECURITY DEFINER;
ALTER FUNCTION get_assignment_queue_status() SECURITY DEFINER;
ALTER FUNCTION assign_chat_to_operator(bigint, text, double precision, bigint, double precision, double precision[],
                                       double precision, integer, double precision) SECURITY DEFINER;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'chatlab_app') THEN
        -- 017's grants went with the renamed functions: they are internal now
        REVOKE EXECUTE ON FUNCTION _chatlab_state_verification_016(), _chatlab_queue_status_016() FROM chatlab_app;
        GRANT EXECUTE ON FUNCTION chat_state_verification(), get_assignment_queue_status(),
            release_unanswered_chats(double precision),
            assign_chat_to_operator(bigint, text, double precision, bigint, double precision, double precision[],
                                    double precision, integer, double precision) TO chatlab_app;
    END IF;
END
$$;
