-- 018 (lab): the lab's epoch, defined once for SQL.  Scenario second t is chatlab_epoch() + t
-- on the database clock (chatlab_now(), migration 001); docs/semantics.md, "Clock".  The
-- Python constant is chatlab.db.clock.EPOCH, and a test checks the two are the same instant.
-- Every query that turns a timestamp into lab seconds (history, snapshot, the client's clock)
-- calls chatlab_seconds(), so the epoch is written nowhere else.

CREATE FUNCTION chatlab_epoch() RETURNS timestamptz
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT '2026-01-01 00:00:00+00'::timestamptz $$;

-- Seconds since the epoch as float8 (NULL stays NULL), to the microsecond.
CREATE FUNCTION chatlab_seconds(p_at timestamptz) RETURNS float8
LANGUAGE sql IMMUTABLE
SET search_path FROM CURRENT
AS $$ SELECT extract(epoch FROM p_at - chatlab_epoch())::float8 $$;

-- Closed to PUBLIC like every function since 017 (017's per-schema default privileges
-- cannot revoke PostgreSQL's global EXECUTE-to-PUBLIC default, so each later migration
-- revokes its own functions); pure functions, so the application role may call them.
REVOKE EXECUTE ON FUNCTION chatlab_epoch(), chatlab_seconds(timestamptz) FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'chatlab_app') THEN
        GRANT EXECUTE ON FUNCTION chatlab_epoch(), chatlab_seconds(timestamptz) TO chatlab_app;
    END IF;
END
$$;
