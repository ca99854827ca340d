"""The migration runner: ordered, recorded, idempotent, and strict about edited files."""

from __future__ import annotations

import uuid

import pytest

from chatlab.db import migrate as m


def _schema() -> str:
    return f"test_mig_{uuid.uuid4().hex[:10]}"


def test_files_are_numbered_and_include_the_seed_migrations():
    versions = [mig.version for mig in m.load_migrations()]
    assert versions == sorted(versions)
    assert {1, 14, 15, 16} <= set(versions)


def test_migrate_records_versions_and_is_idempotent(pg_uri):
    schema = _schema()
    try:
        first = m.migrate(pg_uri, schema)
        assert first == [mig.version for mig in m.load_migrations()]
        applied = m.applied_versions(pg_uri, schema)
        assert sorted(applied) == first
        for mig in m.load_migrations():
            assert applied[mig.version] == (mig.name, mig.checksum)
        assert m.migrate(pg_uri, schema) == []  # second run: nothing to do
        assert m.applied_versions(pg_uri, schema) == applied
    finally:
        m.drop_schema(pg_uri, schema)
    assert m.applied_versions(pg_uri, schema) == {}


def test_version_table_columns(pg_uri):
    import psycopg

    schema = _schema()
    try:
        m.migrate(pg_uri, schema)
        with psycopg.connect(pg_uri) as conn:
            cols = [r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = 'schema_migrations' ORDER BY ordinal_position",
                (schema,))]
            n_applied_at = conn.execute(
                f'SELECT count(applied_at) FROM "{schema}".schema_migrations').fetchone()[0]
        assert cols == ["version", "name", "checksum", "applied_at"]
        assert n_applied_at == len(m.load_migrations())
    finally:
        m.drop_schema(pg_uri, schema)


def test_changed_checksum_is_an_error(pg_uri, monkeypatch):
    schema = _schema()
    try:
        m.migrate(pg_uri, schema)
        original = m.load_migrations

        def edited():
            migs = original()
            migs[1] = m.Migration(migs[1].version, migs[1].name, migs[1].sql + "\n-- edited later\n")
            return migs

        monkeypatch.setattr(m, "load_migrations", edited)
        with pytest.raises(m.MigrationError, match="different checksum"):
            m.migrate(pg_uri, schema)
    finally:
        m.drop_schema(pg_uri, schema)


def test_failed_migration_rolls_back_and_is_not_recorded(pg_uri, monkeypatch):
    schema = _schema()
    original = m.load_migrations
    broken = m.Migration(999, "broken", "CREATE TABLE half_done (id int); SELECT no_such_function();")
    monkeypatch.setattr(m, "load_migrations", lambda: [*original(), broken])
    try:
        with pytest.raises(m.MigrationError, match="999_broken"):
            m.migrate(pg_uri, schema)
        assert 999 not in m.applied_versions(pg_uri, schema)
        assert 16 in m.applied_versions(pg_uri, schema)  # earlier files stay applied
        import psycopg

        with psycopg.connect(pg_uri) as conn:
            assert conn.execute("SELECT to_regclass(%s)", (f"{schema}.half_done",)).fetchone()[0] is None
    finally:
        m.drop_schema(pg_uri, schema)


@pytest.mark.parametrize("bad", ["", "Public", "a-b", "x; drop table y", "pg_catalog", "1abc", "a" * 64, None])
def test_schema_names_are_validated(bad):
    with pytest.raises(m.InvalidSchemaName):
        m.check_schema(bad)


def test_public_is_never_dropped(pg_uri):
    with pytest.raises(m.InvalidSchemaName):
        m.drop_schema(pg_uri, "public")


def test_functions_are_created_in_the_target_schema_only(pg_uri):
    import psycopg

    schema = _schema()
    try:
        m.migrate(pg_uri, schema)
        with psycopg.connect(pg_uri) as conn:
            where = conn.execute(
                "SELECT DISTINCT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE p.proname = 'assign_chat_to_operator'").fetchall()
            config = conn.execute(
                "SELECT p.proconfig FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = %s AND p.proname = 'assign_chat_to_operator'", (schema,)).fetchone()[0]
        assert (schema,) in where
        assert any(c.startswith("search_path=") and schema in c for c in config)
    finally:
        m.drop_schema(pg_uri, schema)
