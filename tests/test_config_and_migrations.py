"""Settings precedence and schema migrations (including an older home upgrading itself)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from photoscout.common.errors import PhotoscoutError
from photoscout.config import load_settings
from photoscout.database import Database, migrations
from photoscout.database.embedded import EmbeddedServer
from tests.conftest import _new_database


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.toml").write_text("batch_size = 8\nthumbnail_size = 300\n")
    monkeypatch.setenv("PHOTOSCOUT_BATCH_SIZE", "16")
    s = load_settings(tmp_path)
    assert (s.batch_size, s.thumbnail_size) == (16, 300)
    assert s.data_dir == tmp_path.absolute() / "data" and s.models_dir == tmp_path.absolute() / "models"
    assert s.uses_embedded_db


def test_home_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTOSCOUT_HOME", str(tmp_path / "h"))
    assert load_settings().home == (tmp_path / "h").absolute()


@pytest.mark.parametrize("text, message", [
    ("not toml = = =", "not valid TOML"),
    ("colour = 'blue'\n", "unknown setting"),
    ("device = 'tpu'\n", "invalid settings"),
])
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(PhotoscoutError, match=message):
        load_settings(tmp_path)


def test_fresh_database_gets_every_migration(pg_server: EmbeddedServer, tmp_path: Path) -> None:
    url = _new_database(pg_server)
    with Database(load_settings(tmp_path, database_url=url)) as db, db.connection() as conn:
        assert migrations.applied(conn) == {m.version for m in migrations.available()}
        assert migrations.pending(conn) == []
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"photos", "photo_embeddings", "region_embeddings", "model_registry", "model_status_history", "jobs",
            "job_units", "eval_runs", "photo_text", "photo_captions", "detections", "scans"} <= tables


def test_older_home_upgrades_itself_and_keeps_its_photos(pg_server: EmbeddedServer, tmp_path: Path) -> None:
    url = _new_database(pg_server)
    with psycopg.connect(url, autocommit=True) as conn:
        migrations.migrate(conn, target=1)  # a home made by the first release
        assert migrations.applied(conn) == {1}
        conn.execute("INSERT INTO photos (path, path_raw, folder, content_hash) VALUES ('/p/a.jpg', '/p/a.jpg', "
                     "'/p', 'abc')")
    with Database(load_settings(tmp_path, database_url=url)) as db, db.connection() as conn:
        assert migrations.pending(conn) == []
        row = conn.execute("SELECT path, content_hash FROM photos").fetchone()
    assert row == ("/p/a.jpg", "abc")


def test_several_embedding_dimensions_live_side_by_side(db: Database) -> None:
    import numpy as np

    with db.connection() as conn:
        conn.execute("INSERT INTO photos (path, path_raw, folder) VALUES ('/a.jpg', '/a.jpg', '/')")
        ids = {}
        for name, dim in (("small", 4), ("large", 8)):
            row = conn.execute("INSERT INTO model_registry (name, type, version, backend) VALUES (%s, 'embedding',"
                               " 'v1.0.0', 'test') RETURNING id", (name,)).fetchone()
            assert row is not None
            ids[name] = row[0]
            conn.execute("INSERT INTO photo_embeddings (photo_id, model_id, embedding_model, embedding_version, "
                         "embedding) SELECT id, %s, %s, 'v1.0.0', %s FROM photos",
                         (row[0], name, np.arange(dim, dtype=np.float32)))
        conn.execute(f"CREATE INDEX ON photo_embeddings USING hnsw ((embedding::vector(8)) vector_cosine_ops) "
                     f"WHERE model_id = {ids['large']}")
        dims = dict(conn.execute("SELECT embedding_model, vector_dims(embedding) FROM photo_embeddings").fetchall())
        vec = conn.execute("SELECT embedding FROM photo_embeddings WHERE model_id = %s", (ids["small"],)).fetchone()
    assert dims == {"small": 4, "large": 8}
    assert vec is not None and np.allclose(vec[0].to_numpy(), np.arange(4))
    with pytest.raises(psycopg.errors.CheckViolation), db.connection() as conn:
        conn.execute("INSERT INTO model_registry (name, type, version, backend) VALUES ('x', 'embedding', '1.0', 't')")
