-- 023 (lab): the operator-ordered policies at floor scale.
--
-- round_robin, least_loaded, longest_idle (and the variants least_loaded_lifetime,
-- least_loaded_by_creation) give the requester what a greedy matching gives it: the operators
-- that can take work, in the policy's key order, each take the first chat of the queue they may
-- have (docs/semantics.md).  020 replayed that matching with one queue query per operator ahead
-- of the requester: 1.7 s per claim with 500 operators online.  This function computes the same
-- answer with two queries and a loop over arrays:
--
--   1. the operators ahead of the requester (key < the requester's key), with their free
--      capacity and skills, in key order: one query (loads aggregated once, not per operator);
--      with known-agent holds, an operator ahead that has a chat held for it takes that chat,
--      which nobody else may take, so it is left out;
--   2. the head of the queue, in queue order: k + 16 chats for k operators ahead;
--   3. the operators ahead each take the first chat of the head they may have.
--
-- Why the head is enough (exact, not an approximation): every operator walks the same queue
-- order, so whether an operator's choice lies in the first L chats, and which one, depends only
-- on what was taken among those L chats; choices beyond them never change one inside them.  So
-- when the requester finds an eligible chat in the head that nobody ahead took, that chat is
-- its answer; when the head is the whole queue, the matching is complete; otherwise the head is
-- read again, four times longer.
--
-- Step 3 without routing rules in the head (no skill needed, every chat fits every operator
-- ahead, no holds), where an operator refuses only a chat it answered last: operators ahead
-- being distinct, the k of them take exactly the first k chats (in some order) unless the
-- operator of rank i meets, as chat i, a run of chats it answered last that reaches past
-- chat k; it then takes the chat after the run and the others the run's first chats.  So only
-- the places where chat i's last operator is the operator of rank i are looked at (one array
-- comparison in SQL), not every operator; with rules, each operator ahead scans the head.
-- tests/test_operator_ordered_scale.py builds queues of such runs.
--
-- The claim then starts at the requester's chat in queue order (every chat before it is
-- taken by an operator ahead or not the requester's), excluding only the chats taken after
-- it; with SLA order or holds it is 020's claim with every taken chat excluded.  Either way
-- one row, SKIP LOCKED, state re-checked under the lock: no chat to two operators.  The checks
-- and the other policies are 020's, unchanged; CREATE OR REPLACE keeps 020's grants, and
-- SECURITY DEFINER is restated because a replace resets it.

-- The waiting queue by last operator (the claim behind a head of the requester's own chats).
CREATE INDEX chats_waiting_by_last_idx ON chats (last_operator_id, priority DESC, waiting_since, id)
    WHERE chat_state = 'waiting_assignment';

CREATE OR REPLACE FUNCTION assign_chat_to_operator(
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
SECURITY DEFINER
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
    -- the operator-ordered matching (see the header): the operators ahead, in key order ...
    v_ids      bigint[];
    v_rooms    bigint[];
    v_skills   text[];                           -- each operator's skills, as text[] literals
    v_k        integer;
    -- ... and the head of the queue, in queue order
    v_limit    integer;
    q_id       bigint[];
    q_last     bigint[];
    q_skill    text[];
    q_weight   integer[];
    q_relaxed  boolean[];
    q_holder   bigint[];                         -- the operator a chat is held for (known agent)
    v_n        integer;
    v_flags    boolean[];                        -- taken by an operator ahead
    v_ntaken   integer;
    v_first    integer;
    v_found    integer;                          -- the requester's chat: its place in the head
    v_minroom  bigint;                           -- the least free capacity among them
    v_simple   boolean;                          -- no chat of the head needs a skill, a hold or more room
    v_general  boolean;
    v_end      integer;
    v_tail     integer;
    v_start    bigint;                           -- the requester's chat in the matching: claim from it on
    v_spri     integer;
    v_sws      timestamptz;
    i          integer;
    j          integer;
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
    IF p_sla_targets IS NOT NULL AND EXISTS (SELECT 1 FROM unnest(p_sla_targets) t WHERE t IS NULL OR t < 0 OR t = 'NaN'::float8 OR t > 1e9) THEN
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
    IF NOT v_op.is_online OR v_room <= 0 OR (p_fair_limit IS NOT NULL AND (SELECT count(*) FROM chat_assignments a
            WHERE a.operator_id = p_operator_id AND a.assigned_at > v_fair) >= p_fair_limit) THEN
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
        -- The greedy matching, played only as far as the requester and only over the head of
        -- the queue that matters (see the header): the operators ahead of it, in key order ...
        WITH ops AS (
            SELECT o.id, o.max_chats - coalesce(l.n, 0) AS room,
                   CASE WHEN v_policy IN ('least_loaded', 'least_loaded_by_creation') THEN coalesce(l.n, 0)
                        WHEN v_policy = 'least_loaded_lifetime'
                        THEN (SELECT count(*) FROM chat_assignments a WHERE a.operator_id = o.id)
                        ELSE 0 END AS k1,
                   coalesce(CASE WHEN v_policy = 'least_loaded_by_creation' THEN NULL
                                 WHEN v_policy = 'longest_idle' THEN o.last_activity_at
                                 ELSE o.last_assigned_at END, '-infinity') AS k2,
                   v_sticky AND EXISTS (  -- it has a chat held for it: it takes that one, nobody else could
                       SELECT 1 FROM chats h
                       WHERE h.chat_state = 'waiting_assignment' AND h.sticky_operator_id = o.id
                         AND h.last_operator_id IS NULL AND h.created_at > v_held
                         AND h.weight <= o.max_chats - coalesce(l.n, 0)
                         AND (h.skill IS NULL OR h.skill = ANY (o.skills) OR h.waiting_since <= v_relax)) AS holds
            FROM operators o
            LEFT JOIN (SELECT c.assigned_operator_id AS id, sum(c.weight) AS n FROM chats c
                       WHERE c.chat_state = 'assigned' GROUP BY c.assigned_operator_id) l ON l.id = o.id
            WHERE o.is_online AND coalesce(l.n, 0) < o.max_chats
              AND (p_fair_limit IS NULL OR (SELECT count(*) FROM chat_assignments a
                                            WHERE a.operator_id = o.id AND a.assigned_at > v_fair) < p_fair_limit)
        )
        SELECT array_agg(a.id), array_agg(a.room), min(a.room)  -- in the sorted subquery's order
        INTO v_ids, v_rooms, v_minroom
        FROM (SELECT a.id, a.room FROM ops a JOIN ops me ON me.id = p_operator_id
              WHERE (a.k1, a.k2, a.id) < (me.k1, me.k2, me.id) AND NOT a.holds
              ORDER BY a.k1, a.k2, a.id) a;
        v_k := coalesce(array_length(v_ids, 1), 0);
        v_limit := v_k + 16;
        -- ... each take the first chat of the head they may have; the head is long enough when
        -- the requester finds one in it, or when it is the whole queue (else: four times longer).
        WHILE v_k > 0 LOOP
            -- the head: ids and last operators first (all the shortcut below needs) ...
            IF v_sla THEN
                SELECT array_agg(q.id), array_agg(q.last_operator_id), array_agg(q.weight),
                       bool_and(q.skill IS NULL OR q.waiting_since <= v_relax) AND max(q.weight) <= v_minroom
                INTO q_id, q_last, q_weight, v_simple
                FROM (SELECT c.id, c.last_operator_id, c.skill, c.weight, c.waiting_since FROM chats c
                      WHERE c.chat_state = 'waiting_assignment'
                      ORDER BY _chatlab_deadline(c.waiting_since, c.priority, p_sla_targets) NULLS LAST, c.id
                      LIMIT v_limit) q;
            ELSE
                SELECT array_agg(q.id), array_agg(q.last_operator_id), array_agg(q.weight),
                       bool_and(q.skill IS NULL OR q.waiting_since <= v_relax) AND max(q.weight) <= v_minroom
                INTO q_id, q_last, q_weight, v_simple
                FROM (SELECT c.id, c.last_operator_id, c.skill, c.weight, c.waiting_since FROM chats c
                      WHERE c.chat_state = 'waiting_assignment'
                      ORDER BY c.priority DESC, c.waiting_since, c.id
                      LIMIT v_limit) q;
            END IF;
            v_n := coalesce(array_length(q_id, 1), 0);
            v_general := v_sticky OR NOT coalesce(v_simple AND v_n > v_k, false);
            IF v_general THEN  -- ... and everything the rules need when they apply
                IF v_sla THEN
                    SELECT array_agg(q.id), array_agg(q.last_operator_id), array_agg(q.skill), array_agg(q.weight),
                           array_agg(q.relaxed), array_agg(q.holder)
                    INTO q_id, q_last, q_skill, q_weight, q_relaxed, q_holder
                    FROM (SELECT c.id, c.last_operator_id, c.skill, c.weight, c.waiting_since <= v_relax AS relaxed,
                                 CASE WHEN v_sticky AND c.last_operator_id IS NULL AND c.created_at > v_held
                                           AND EXISTS (SELECT 1 FROM operators s WHERE s.id = c.sticky_operator_id
                                                         AND s.is_online AND c.weight <= s.max_chats - _chatlab_load(s.id))
                                      THEN c.sticky_operator_id END AS holder
                          FROM chats c WHERE c.chat_state = 'waiting_assignment'
                          ORDER BY _chatlab_deadline(c.waiting_since, c.priority, p_sla_targets) NULLS LAST, c.id
                          LIMIT v_limit) q;
                ELSE
                    SELECT array_agg(q.id), array_agg(q.last_operator_id), array_agg(q.skill), array_agg(q.weight),
                           array_agg(q.relaxed), array_agg(q.holder)
                    INTO q_id, q_last, q_skill, q_weight, q_relaxed, q_holder
                    FROM (SELECT c.id, c.last_operator_id, c.skill, c.weight, c.waiting_since <= v_relax AS relaxed,
                                 CASE WHEN v_sticky AND c.last_operator_id IS NULL AND c.created_at > v_held
                                           AND EXISTS (SELECT 1 FROM operators s WHERE s.id = c.sticky_operator_id
                                                         AND s.is_online AND c.weight <= s.max_chats - _chatlab_load(s.id))
                                      THEN c.sticky_operator_id END AS holder
                          FROM chats c WHERE c.chat_state = 'waiting_assignment'
                          ORDER BY c.priority DESC, c.waiting_since, c.id
                          LIMIT v_limit) q;
                END IF;
                v_n := coalesce(array_length(q_id, 1), 0);
            END IF;
            v_flags := array_fill(false, ARRAY[v_n + 1]);
            v_taken := '{}';
            v_ntaken := 0;
            v_tail := NULL;
            IF NOT v_general THEN
                -- Every chat of the head fits every operator ahead and needs no skill: an operator
                -- refuses only a chat it answered last.  Then the k operators ahead take exactly
                -- the first k chats (in some order), except at the end: operator i facing chat i
                -- that it answered last skips the run of its own chats there and takes the one
                -- after the run; the operators after it take the skipped ones.  Only a run that
                -- reaches beyond chat k changes the set: then chats 1..k-1 and the one after it.
                v_end := 0;
                FOR i IN SELECT t.i FROM unnest(q_last[1:v_k], v_ids) WITH ORDINALITY AS t (l, o, i)
                         WHERE t.l = t.o ORDER BY t.i LOOP
                    CONTINUE WHEN i <= v_end;  -- inside an earlier run: taken by someone after its operator
                    v_end := i;
                    WHILE v_end <= v_n AND q_last[v_end] = v_ids[i] LOOP
                        v_end := v_end + 1;
                    END LOOP;
                    IF v_end > v_k THEN
                        v_tail := v_end;
                        EXIT;
                    END IF;
                END LOOP;
                IF v_tail IS NULL THEN
                    v_flags[1:v_k] := array_fill(true, ARRAY[v_k]);
                    v_first := v_k + 1;
                ELSIF v_tail <= v_n THEN
                    IF v_k > 1 THEN
                        v_flags[1:v_k - 1] := array_fill(true, ARRAY[v_k - 1]);
                    END IF;
                    v_flags[v_tail] := true;
                    v_first := v_k;
                ELSIF v_n < v_limit THEN  -- the run ends the queue: its operator takes nothing
                    IF v_k > 1 THEN
                        v_flags[1:v_k - 1] := array_fill(true, ARRAY[v_k - 1]);
                    END IF;
                    v_first := v_k;
                ELSE  -- the run reaches the end of the head: read more
                    v_first := v_n + 1;
                END IF;
            END IF;
            IF v_general THEN
                IF v_skills IS NULL THEN  -- the skills of the operators ahead, in their order
                    SELECT array_agg(o.skills::text ORDER BY t.i) INTO v_skills
                    FROM unnest(v_ids) WITH ORDINALITY AS t (id, i) JOIN operators o ON o.id = t.id;
                END IF;
                v_flags := array_fill(false, ARRAY[v_n + 1]);
                v_first := 1;   -- the first chat of the head nobody took yet
                FOR j IN 1 .. v_k LOOP
                    EXIT WHEN v_first > v_n;  -- the head is used up
                    i := v_first;
                    WHILE i <= v_n LOOP
                        IF NOT v_flags[i] AND q_holder[i] IS NULL AND q_last[i] IS DISTINCT FROM v_ids[j]
                           AND q_weight[i] <= v_rooms[j]
                           AND (q_skill[i] IS NULL OR q_relaxed[i] OR q_skill[i] = ANY (v_skills[j]::text[])) THEN
                            v_flags[i] := true;
                            EXIT;
                        END IF;
                        i := i + 1;
                    END LOOP;
                    WHILE v_flags[v_first] LOOP  -- v_flags[v_n + 1] is false: the loop stops
                        v_first := v_first + 1;
                    END LOOP;
                END LOOP;
            END IF;
            v_found := NULL;
            FOR i IN v_first .. v_n LOOP  -- the requester's chat: the first in the head nobody ahead took
                IF NOT v_flags[i] AND q_last[i] IS DISTINCT FROM p_operator_id AND q_weight[i] <= v_room
                   AND (NOT v_general OR ((q_holder[i] IS NULL OR q_holder[i] = p_operator_id)
                        AND (q_skill[i] IS NULL OR q_relaxed[i] OR q_skill[i] = ANY (v_op.skills)))) THEN
                    v_found := i;
                    EXIT;
                END IF;
            END LOOP;
            IF v_found IS NOT NULL OR v_n < v_limit THEN
                -- found, or the head is the whole queue: the chats taken ahead are final.  Without
                -- SLA order or holds the claim starts at the requester's chat (every chat before
                -- it is taken or not the requester's), so only the chats taken after it matter.
                FOR i IN CASE WHEN v_sla OR v_sticky OR v_found IS NULL THEN 1 ELSE v_found END .. v_n LOOP
                    IF v_flags[i] THEN
                        v_ntaken := v_ntaken + 1;
                        v_taken[v_ntaken] := q_id[i];
                    END IF;
                END LOOP;
                IF v_found IS NOT NULL AND NOT v_sla AND NOT v_sticky THEN
                    v_start := q_id[v_found];
                END IF;
                EXIT;
            END IF;
            v_limit := v_limit * 4;
        END LOOP;
    END IF;

    -- The fix's claim behind a head of the requester's own chats (it answered them last, so it may
    -- take none): instead of walking that run row by row, the first chat of the queue answered
    -- last by someone else or by nobody, one probe per such operator (chats_waiting_by_last_idx),
    -- and the claim starts there.  Exact: every chat before it is the requester's.
    IF v_policy IN ('exclude_last', 'exclude_last_unlocked') AND NOT v_sla AND NOT v_sticky
       AND (SELECT c.last_operator_id FROM chats c WHERE c.chat_state = 'waiting_assignment'
            ORDER BY c.priority DESC, c.waiting_since, c.id LIMIT 1) = p_operator_id THEN
        WITH RECURSIVE lasts AS (
            (SELECT c.last_operator_id AS l FROM chats c
             WHERE c.chat_state = 'waiting_assignment' AND c.last_operator_id IS NOT NULL
             ORDER BY c.last_operator_id LIMIT 1)
            UNION ALL
            SELECT (SELECT c.last_operator_id FROM chats c
                    WHERE c.chat_state = 'waiting_assignment' AND c.last_operator_id > lasts.l
                    ORDER BY c.last_operator_id LIMIT 1)
            FROM lasts WHERE lasts.l IS NOT NULL
        ), firsts AS (
            SELECT f.* FROM lasts
            CROSS JOIN LATERAL (SELECT c.id, c.priority, c.waiting_since FROM chats c
                                WHERE c.chat_state = 'waiting_assignment' AND c.last_operator_id = lasts.l
                                ORDER BY c.last_operator_id, c.priority DESC, c.waiting_since, c.id LIMIT 1) f
            WHERE lasts.l <> p_operator_id
            UNION ALL
            (SELECT c.id, c.priority, c.waiting_since FROM chats c
             WHERE c.chat_state = 'waiting_assignment' AND c.last_operator_id IS NULL
             ORDER BY c.last_operator_id, c.priority DESC, c.waiting_since, c.id LIMIT 1)  -- the index's order
        )
        SELECT f.id INTO v_start FROM firsts f ORDER BY f.priority DESC, f.waiting_since, f.id LIMIT 1;
        IF v_start IS NULL THEN
            RETURN NULL;  -- the queue holds only the requester's own chats
        END IF;
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
    ELSIF v_start IS NOT NULL THEN  -- no SLA order, no holds, the requester's chat is known: from it on
        SELECT c.priority, c.waiting_since INTO v_spri, v_sws FROM chats c WHERE c.id = v_start;
        SELECT c.id, c.chat_state INTO v_chat, v_from FROM chats c
        WHERE c.chat_state = 'waiting_assignment' AND c.priority = v_spri AND (c.waiting_since, c.id) >= (v_sws, v_start)
          AND c.last_operator_id IS DISTINCT FROM p_operator_id
          AND c.id <> ALL (v_taken) AND c.weight <= v_room
          AND (c.skill IS NULL OR c.skill = ANY (v_op.skills) OR c.waiting_since <= v_relax)
        ORDER BY c.priority DESC, c.waiting_since, c.id
        LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED;
        IF v_chat IS NULL THEN  -- the lower classes
            SELECT c.id, c.chat_state INTO v_chat, v_from FROM chats c
            WHERE c.chat_state = 'waiting_assignment' AND c.priority < v_spri
              AND c.last_operator_id IS DISTINCT FROM p_operator_id
              AND c.id <> ALL (v_taken) AND c.weight <= v_room
              AND (c.skill IS NULL OR c.skill = ANY (v_op.skills) OR c.waiting_since <= v_relax)
            ORDER BY c.priority DESC, c.waiting_since, c.id
            LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED;
        END IF;
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

