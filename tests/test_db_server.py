"""The embedded server helpers: throw-away servers always go away; $DATABASE_URL wins."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from chatlab.db import server


def _socket_dir(uri: str) -> Path:
    return Path(parse_qs(urlsplit(uri).query)["host"][0])


def test_temporary_server_is_stopped_and_deleted_even_after_an_error():
    with pytest.raises(RuntimeError, match="boom"):
        with server.temporary_server(prefix="chatlab-srvtest-") as uri:
            with psycopg.connect(uri) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
                assert conn.execute("SHOW fsync").fetchone() == ("off",)  # throw-away settings
            pgdata = _socket_dir(uri)
            assert (pgdata / "PG_VERSION").exists()
            raise RuntimeError("boom")
    assert not pgdata.parent.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(uri, connect_timeout=2)


def test_database_url_prefers_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgresql://someone:secret@db.example:5432/lab")
    monkeypatch.setenv("CHATLAB_DATA_DIR", str(tmp_path))
    assert server.database_url() == "postgresql://someone:secret@db.example:5432/lab"
    status = server.server_status()
    assert status.kind == "external" and "secret" not in status.describe()
    assert not (tmp_path / "pg").exists()  # nothing embedded was started


def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("CHATLAB_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert server.data_dir() == tmp_path / ".chatlab" / "pg"
    monkeypatch.setenv("CHATLAB_DATA_DIR", str(tmp_path / "elsewhere"))
    assert server.data_dir() == tmp_path / "elsewhere" / "pg"
    assert server.data_dir(tmp_path / "explicit") == tmp_path / "explicit" / "pg"


def test_status_of_a_never_started_server_starts_nothing(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    status = server.server_status(tmp_path / "lab")
    assert status.kind == "embedded" and not status.running and status.uri is None
    assert server.stop_server(tmp_path / "lab") is False
    assert not (tmp_path / "lab" / "pg").exists()
