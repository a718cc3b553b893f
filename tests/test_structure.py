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
          "analysis", "jobs", "search", "evaluation", "rollout", "maintenance", "app", "client", "service", "web",
          "cli"]
# The faces drive the core: the CLI may start the web face (``serve``), which runs the service (``service/``, the
# always-on host of the core: no SQL, no rule of its own but its timing); none imports a later one.
FACES = {"service", "web", "cli"}
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


# -- one home for each rule (issue #26) ---------------------------------------------------------------------------
WEB = SRC / "web"
PAGE_FILES = sorted([*WEB.glob("templates/*.html"), *WEB.glob("static/*.js")])


def _literals(tree: ast.AST) -> Iterator[tuple[int, set[str]]]:
    """Each string constant's quoted words ('running' in SQL) and each tuple/list/set literal's strings."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, set(re.findall(r"'(\w+)'", node.value)) | {node.value}
        elif isinstance(node, ast.Tuple | ast.List | ast.Set):
            yield node.lineno, {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}


def _second_definitions(names: set[str], home: str) -> list[str]:
    """Places outside ``home`` that spell out two or more of ``names`` together (a set of them written again)."""
    found = []
    for name, path in modules():
        if name == home:
            continue
        for line, words in _literals(ast.parse(path.read_text(encoding="utf-8"))):
            if len(words & names) >= 2:
                found.append(f"{path.relative_to(SRC.parent)}:{line}: {sorted(words & names)}")
    for path in PAGE_FILES:
        text = path.read_text(encoding="utf-8")
        for line_no, line in enumerate(text.splitlines(), 1):
            quoted = set(re.findall(r"""["'](\w+)["']""", line))
            if len(quoted & names) >= 2 or (names & quoted and "status" in line and "==" in line):
                found.append(f"{path.relative_to(SRC.parent)}:{line_no}: {sorted(quoted & names)}")
    return found


def test_job_states_and_kinds_are_defined_once() -> None:
    """The job statuses and kinds live in ``jobs/states.py``; a second set of them (a tuple in a face, a SQL
    ``IN ('pending', 'running')``, a template comparing statuses) is how a paused job came to end the web page's
    live updates while ``jobs status --watch`` kept polling."""
    from photoscout.jobs.states import JobKind, JobStatus

    assert not (wrong := _second_definitions({str(s) for s in JobStatus}, "photoscout.jobs.states")), \
        "job statuses written again (use photoscout.jobs.states):\n" + "\n".join(wrong)
    assert not (wrong := _second_definitions({str(k) for k in JobKind}, "photoscout.jobs.states")), \
        "job kinds written again (use photoscout.jobs.states):\n" + "\n".join(wrong)


def test_the_page_cap_is_one_constant() -> None:
    """``search.results`` holds the paging bounds (``MAX_PAGE``, ``MAX_OFFSET``, ``MAX_MATCHES``); no face writes
    them as numbers."""
    from photoscout.search.results import MAX_MATCHES, MAX_OFFSET, MAX_PAGE

    cap = {MAX_PAGE, MAX_OFFSET, MAX_MATCHES}

    def limits(tree: ast.AST) -> Iterator[ast.expr]:
        """Numbers used as bounds: keyword values (``le=``), compared, computed with, assigned."""
        for n in ast.walk(tree):
            if isinstance(n, ast.Call):
                yield from (k.value for k in n.keywords)
            elif isinstance(n, ast.Compare):
                yield from (n.left, *n.comparators)
            elif isinstance(n, ast.BinOp):
                yield from (n.left, n.right)
            elif isinstance(n, ast.Assign | ast.AnnAssign) and n.value is not None:
                yield n.value

    wrong = [f"{path.relative_to(SRC.parent)}:{n.lineno}: {n.value}" for path in _face_files()
             for n in limits(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(n, ast.Constant) and type(n.value) is int and n.value in cap]
    wrong += [f"{path.relative_to(SRC.parent)}: {number}" for path in PAGE_FILES
              for number in re.findall(r"\b\d+\b", path.read_text(encoding="utf-8")) if int(number) in cap]
    assert not wrong, "a paging bound written as a number (use search.results):\n" + "\n".join(wrong)


def test_filters_and_dates_are_parsed_in_one_place() -> None:
    """Every face reads filters with ``Filters.parse`` / ``Filters.from_params`` and dates with the filters' one
    date parser: no face builds ``Filters(...)`` itself or parses a date, and no other module defines a date
    parser."""
    wrong = []
    for path in _face_files():
        for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(n, ast.Call):
                f = n.func
                if isinstance(f, ast.Name) and f.id == "Filters":
                    wrong.append(f"{path.name}:{n.lineno}: Filters(...) built in a face")
                if isinstance(f, ast.Attribute) and f.attr in ("fromisoformat", "strptime"):
                    wrong.append(f"{path.name}:{n.lineno}: a date parsed in a face")
    for name, path in modules():
        for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(n, ast.FunctionDef) and re.fullmatch(r"_?(parse_)?dates?", n.name) \
                    and name != "photoscout.search.filters":
                wrong.append(f"{path.relative_to(SRC.parent)}:{n.lineno}: a second date parser {n.name}()")
    assert not wrong, "\n".join(wrong)


def test_the_query_meaning_lives_in_search_query() -> None:
    """What a query means (its words, the words naming a category or a printed-word concept, the stopwords) is
    defined in ``search/query.py`` only; the engine and the categories take it from there."""
    owned = {"TEXT_CONCEPTS", "CATEGORY_WORDS", "STOPWORDS", "named_in", "named_categories", "ocr_terms", "words"}
    wrong = []
    for name, path in modules():
        if name == "photoscout.search.query":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for n in [*ast.walk(tree), *tree.body]:  # functions anywhere, constants at module level
            defined = [n.name] if isinstance(n, ast.FunctionDef) else \
                [t.id for t in n.targets if isinstance(t, ast.Name)] if isinstance(n, ast.Assign) and n in tree.body \
                else []
            wrong += [f"{path.relative_to(SRC.parent)}:{n.lineno}: {d}" for d in defined if d in owned]
    assert not wrong, "a query's meaning defined outside search/query.py:\n" + "\n".join(wrong)


def test_pages_hold_no_rules() -> None:
    """Templates show what the core says a version allows (``actions``); they do not decide it from its status."""
    wrong = [f"{path.name}:{i}: {line.strip()[:80]}" for path in WEB.glob("templates/*.html")
             for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if re.search(r"\.status\s*(in|==|!=)\s*[(\[']", line) and "actions" not in line]
    assert not wrong, "a rule in a template (ask the core: models_list()[...]['actions']):\n" + "\n".join(wrong)


def test_the_readme_architecture_names_every_module() -> None:
    """The README's layer table names each package's modules in that package's row, and every module a row names
    is in that package (the table once put ``artifacts.py`` under ``registry/``; it is ``models/artifacts.py``)."""
    readme = (SRC.parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Architecture"):readme.index("## Tests and benchmarks")]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)/` \|(.*)$", section, re.MULTILINE)}
    problems = []
    for package in sorted(p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        folder = SRC / package
        if package not in rows:
            problems.append(f"no row for {package}/")
            continue
        files = {p.relative_to(folder).as_posix() for p in folder.rglob("*.py")}
        named = set(re.findall(r"`([\w/]+\.py)`", rows[package]))
        problems += [f"{package}/{f} is not named in its row" for f in sorted(files)
                     if not f.endswith("__init__.py") and f.split("/")[-1] not in named and f not in named]
        problems += [f"the {package}/ row names {n}, which is not in {package}/" for n in sorted(named)
                     if not any(f == n or f.endswith("/" + n) for f in files)]
    top = {p.name for p in SRC.glob("*.py")} - {"__init__.py"}
    problems += [f"no row for {f}" for f in sorted(top) if f"| `{f}` |" not in section]
    assert not problems, "the README's architecture section is not true file by file:\n" + "\n".join(problems)


def test_the_rule_checks_find_what_they_look_for(tmp_path: Path) -> None:
    """The rule checks are not vacuous: a planted set of job statuses and a planted date parser are found."""
    planted = ast.parse("DONE = ('completed', 'failed')\nsql = \"WHERE status IN ('pending', 'running')\"\n")
    found = [words for _line, words in _literals(planted) if len(words & {"completed", "failed", "pending",
                                                                         "running"}) >= 2]
    assert len(found) == 2
    assert re.fullmatch(r"_?(parse_)?dates?", "_date") and not re.fullmatch(r"_?(parse_)?dates?", "update")
