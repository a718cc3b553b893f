"""The shape of the code, checked on every run so it stays true:

* the sub-packages of ``src/photoscout`` import each other top to bottom in the order of ``LAYERS`` (every import
  counts, lazy ones inside functions included), so there is no cycle;
* only the faces import the core entry (``photoscout.app``), and nothing but a later face imports a face;
* the faces hold no SQL and touch no database connection: they parse, call the core and format;
* the list of per-model output tables (``database.schema``) is the schema's own.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from photoscout.database import Database
from photoscout.database.schema import OUTPUT_TABLES, PHOTO_OUTPUT_TABLES

SRC = Path(__file__).resolve().parent.parent / "src" / "photoscout"
# Lowest first: a unit may import only units above it in this list (and itself).
LAYERS = ["photoscout", "common", "config", "database", "models", "registry", "library",
          "analysis", "jobs", "search", "evaluation", "rollout", "maintenance", "app", "client", "web", "cli"]
FACES = {"web", "cli"}  # the CLI may start the web face (``serve``); the web face never imports the CLI
CORE_ENTRY = "app"
SQL = re.compile(r"\b(SELECT\s|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s|ALTER\s|DROP\s|TRUNCATE\s)")


def unit_of(module: str) -> str:
    """``photoscout.search.engine`` -> ``search``; the package itself is ``photoscout``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        name = ".".join(rel.parts)
        yield (name[: -len(".__init__")] if name.endswith(".__init__") else name), path


def imports(path: Path) -> Iterator[tuple[str, int]]:
    """Every photoscout module a file imports, at any depth (module level, functions, TYPE_CHECKING blocks)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno
            for alias in node.names:  # "from photoscout import app" imports the module photoscout.app
                yield f"{node.module}.{alias.name}", node.lineno


def edges() -> list[tuple[str, str, str]]:
    """(importing unit, imported unit, where) for imports between different units."""
    found = []
    for name, path in modules():
        src = unit_of(name)
        for target, line in imports(path):
            if target == "photoscout" or target.startswith("photoscout."):
                dst = unit_of(target)
                if dst in LAYERS and dst != src:
                    found.append((src, dst, f"{path.relative_to(SRC.parent)}:{line}"))
    return found


def test_every_unit_has_a_layer() -> None:
    units = {unit_of(name) for name, _path in modules()}
    assert units == set(LAYERS), f"add new units to LAYERS (and to the README): {units ^ set(LAYERS)}"


def test_imports_read_top_to_bottom_without_cycles() -> None:
    upward = [f"{where}: {src} imports {dst}" for src, dst, where in edges() if LAYERS.index(dst) > LAYERS.index(src)]
    assert not upward, "imports against the layer order (a cycle in the making):\n" + "\n".join(upward)


def test_only_faces_import_the_core_entry_and_nothing_imports_a_face() -> None:
    wrong = [f"{where}: {src} imports {dst}" for src, dst, where in edges()
             if (dst in FACES and (src not in FACES or LAYERS.index(src) < LAYERS.index(dst)))
             or (dst == CORE_ENTRY and src not in FACES)]
    assert not wrong, "\n".join(wrong)


def _face_files() -> list[Path]:
    return [path for name, path in modules() if unit_of(name) in FACES]


@pytest.mark.parametrize("path", _face_files(), ids=lambda p: p.name)
def test_faces_hold_no_sql_and_no_database_access(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    strings = [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    sql = [f"line {n.lineno}: {n.value[:60]!r}" for n in strings if SQL.search(n.value)]
    assert not sql, f"SQL in a face ({path.name}):\n" + "\n".join(sql)
    calls = [f"line {n.lineno}: .{n.func.attr}()" for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and n.func.attr in ("connection", "execute", "executemany", "cursor")]
    assert not calls, f"database access in a face ({path.name}): {calls}"
    drivers = [target for target, _line in imports(path) if target.split(".")[0] in ("psycopg", "psycopg_pool")
               or target.startswith("photoscout.database")]
    assert not drivers, f"a face imports the database layer ({path.name}): {drivers}"


def test_the_checks_catch_what_they_look_for(tmp_path: Path) -> None:
    """The checks above are not vacuous: a planted upward import and SQL string are found."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from photoscout.cli import app\n    return 'SELECT 1 FROM photos'\n")
    assert ("photoscout.cli", 2) in list(imports(bad))
    assert SQL.search("DELETE FROM photos WHERE id = %s") and not SQL.search("select a photo to delete from it")


def test_output_tables_are_the_schemas_own(db: Database) -> None:
    """Every table whose rows belong to a model version (a model_id that keeps the version from being deleted)
    is in OUTPUT_TABLES, which the scanner, prune and disk accounting share; those with a photo_id are per photo."""
    with db.connection() as conn:
        rows = conn.execute(
            """SELECT c.conrelid::regclass::text, c.confdeltype,
                      EXISTS (SELECT 1 FROM information_schema.columns i
                              WHERE i.table_name = c.conrelid::regclass::text AND i.column_name = 'photo_id')
               FROM pg_constraint c WHERE c.contype = 'f' AND c.confrelid = 'model_registry'::regclass""").fetchall()
    restricted = {table: per_photo for table, action, per_photo in rows if action in ("r", "a")}  # RESTRICT/NO ACTION
    assert set(OUTPUT_TABLES) == set(restricted)
    assert set(PHOTO_OUTPUT_TABLES) == {t for t, per_photo in restricted.items() if per_photo}
    assert len(OUTPUT_TABLES) == len(set(OUTPUT_TABLES))
