"""The search engine. One query runs:

1. the query embedding (text through the model's text side, or a photo through its image side; cached per model);
2. nearest neighbours among the photos' vectors of that model version, through the version's IVFFlat index with
   pgvector's iterative index scan so filters still return ``limit`` results (or an exact scan when the filter is
   selective: it keeps fewer photos than ``EXACT_BELOW``);
3. for text queries, PostgreSQL full-text search over OCR text;
4. reciprocal-rank fusion (RRF, k = 60) of the rankings; each result says why it matched (image similarity, the
   OCR words, the photo's best labels);
5. for text queries, pseudo-relevance feedback: the mean image features (the active few-shot featurizer's) of the
   first screen of that fusion rank the candidates once more, and the rankings are fused again. A query's words
   reach photos through ImageNet classes; what the best matches look like reaches their look-alikes that no class
   names ("headphones": microphone-like photos first, then the photos that look like those).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import IO, Any

import numpy as np
import psycopg
from pgvector import HalfVector
from psycopg.rows import dict_row

from photoscout.analysis import categories
from photoscout.config import Settings
from photoscout.database import Database, indexes
from photoscout.errors import InvalidParameter, NotFound, PhotoscoutError
from photoscout.imaging import load_rgb
from photoscout.models.base import EmbeddingModel
from photoscout.models.cache import ModelCache
from photoscout.registry import lifecycle
from photoscout.search.query import TEXT_CONCEPTS, Filters, ocr_terms, printed_phrases

MAX_QUERY_CHARS = 1000
MAX_LIMIT = 500
RRF_K = 60
FEEDBACK_K = 10  # the first screen's photos whose mean features rank the candidates again (pseudo-relevance feedback)
EXACT_BELOW = 2000  # filtered candidate sets smaller than this are scanned exactly (cheap and exact)
OCR_WEIGHT = 0.5  # OCR text matches count half a vector rank (a receipt that says "pizza" is not a pizza)
SQUEEZED_MIN = 5  # query words this long are also looked for inside OCR text with spaces and punctuation squeezed out
TEXT_MEANING_MIN = 0.3  # the embedded OCR text counts only when it is this close to the query
# candidates a leading-part index gives, re-ranked by the whole vector: for a ranking twice the rows wanted and at
# least 400 (recall@10 0.98 against the exact order on dense near-copies, tests/test_jobs.py); a supporting ranking
# (it probes fewer lists anyway) re-orders the rows it finds
RERANK_FACTOR, RERANK_MIN = 2, 400
ESTIMATE_TTL = 60.0  # seconds a planner's estimate of a filter (or that a version has embeddings) is reused
Conn = psycopg.Connection[Any]


@dataclass
class Hit:
    photo_id: int
    path: str
    score: float
    why: list[str]
    similarity: float | None = None
    thumbnail: str | None = None
    categories: list[str] = field(default_factory=list)
    taken_at: str | None = None


@dataclass
class SearchResult:
    model: str
    hits: list[Hit]
    timings_ms: dict[str, float]
    exact: bool

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "exact": self.exact, "timings_ms": self.timings_ms,
                "results": [h.__dict__ for h in self.hits]}


class SearchEngine:
    """Keeps models loaded and query embeddings cached; one per long-running process (CLI, API)."""

    def __init__(self, db: Database, settings: Settings, models: ModelCache | None = None) -> None:
        self.db = db
        self.settings = settings
        self.models = models or ModelCache(settings)
        self._cache: OrderedDict[tuple[int, str], np.ndarray] = OrderedDict()
        self._probes_cache: dict[int, int] = {}
        self._estimates: dict[tuple[str, str], tuple[float, float]] = {}
        self._has_rows: dict[int, float] = {}  # version id -> when it was last seen to have embeddings

    def clear_cache(self) -> None:
        """Forget cached query embeddings (an evaluation measures latency with the query embedding included)."""
        self._cache.clear()
        self._probes_cache.clear()
        self._estimates.clear()
        self._has_rows.clear()

    def warm_up(self, model_ref: str | None = None) -> None:
        """Load the model and run one query so the first real search is fast."""
        model = self._model(model_ref)
        self._text_vector(model, "photo")
        with self.db.connection() as conn:  # the estimates a query naming a category asks for
            for cat in categories.CATEGORY_WORDS:
                self._estimate(conn, *Filters(category=cat).sql())

    def search(self, text: str | None = None, *, image: str | IO[bytes] | None = None, similar_to: int | None = None,
               limit: int = 20, offset: int = 0, filters: Filters | None = None,
               model_ref: str | None = None) -> SearchResult:
        """``text``, or photos like ``image`` (a file) or like the library's photo ``similar_to``; results
        ``offset`` to ``offset + limit`` of the ranking (a page)."""
        t0 = time.perf_counter()
        filters = filters or Filters()
        text = (text or "").strip()
        if sum(map(bool, (text, image, similar_to is not None))) != 1:
            raise InvalidParameter("give a text query, an image or a photo to search with (one of them)",
                                   "text", "image", "similar_to")
        if len(text) > MAX_QUERY_CHARS:
            raise InvalidParameter(f"the query has {len(text)} characters; at most {MAX_QUERY_CHARS}", "text")
        text, printed = printed_phrases(text)
        if printed:  # quoted words must be printed in the photo: a filter, and the OCR evidence leads
            filters = replace(filters, printed=(*filters.printed, *printed))
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidParameter(f"limit must be between 1 and {MAX_LIMIT}", "limit")
        if not 0 <= offset <= MAX_LIMIT - limit:
            raise InvalidParameter(f"offset must be between 0 and {MAX_LIMIT} minus the limit "
                                   f"(the first {MAX_LIMIT} results can be paged through)", "offset")
        filters.check()
        reg = self._model(model_ref)
        page, limit = (offset, limit), offset + limit
        timings: dict[str, float] = {}
        if image:
            try:
                query = self._image_vector(reg, image)
            except (OSError, ValueError) as exc:
                raise PhotoscoutError(f"cannot read the query image: {exc}") from exc
        elif similar_to is not None:
            query = self._stored_vector(reg, similar_to)
        else:
            query = self._text_vector(reg, text)
        timings["embed"] = (time.perf_counter() - t0) * 1000
        pool = max(limit * 3, 30)  # candidates per ranking before fusion
        with self.db.connection() as conn:  # one connection (one transaction) for the rest of the search
            t1 = time.perf_counter()
            vector_hits, exact = self._nearest(reg, query, filters, pool, conn=conn)
            category_hits: list[tuple[int, float]] = []
            for cat in ([] if not text or filters.category else categories.named_in(text)):
                # a supporting ranking, as long as the page: the index scan stops at the usual probes (it may
                # return fewer) instead of widening until enough photos of the category are found (50-70 ms at
                # 100k photos when the query's neighbours are mostly of other categories)
                if reg.status == "active":
                    more, _ = self._nearest(reg, query, Filters(**{**filters.__dict__, "category": cat}), limit,
                                            widen=False, conn=conn)
                else:  # a version under evaluation is measured with its own categories
                    more, _ = self._nearest(reg, query, filters, limit, own_category=cat, widen=False, conn=conn)
                category_hits += more
            timings["vector"] = (time.perf_counter() - t1) * 1000
            ocr_hits: list[tuple[int, str]] = []
            meaning_hits: list[tuple[int, float]] = []
            if text:
                t2 = time.perf_counter()
                ocr_hits = self._ocr(text, filters, pool, conn=conn)
                meaning_hits = self._text_meaning(reg, query, filters, pool, conn=conn)
                timings["ocr"] = (time.perf_counter() - t2) * 1000
            t3 = time.perf_counter()
            # a concept defined by printed words (a receipt): the OCR evidence leads
            ocr_weight = 2.0 if filters.printed or any(w.rstrip("s") in TEXT_CONCEPTS for w in text.lower().split()) \
                else OCR_WEIGHT
            rankings = (vector_hits, ocr_hits, category_hits, ocr_weight, meaning_hits)
            feedback: list[tuple[int, float]] = []
            if text:  # the first screen's look, over every candidate of the rankings
                first = self._scores(*rankings)[0]
                best = sorted(first, key=lambda p: -first[p])[:FEEDBACK_K]
                feedback = self._feedback(best, list(first), conn)
            hits = self._fuse(reg, *rankings, feedback, limit=limit, skip=page[0], conn=conn)
            timings["fuse"] = (time.perf_counter() - t3) * 1000
        timings["total"] = (time.perf_counter() - t0) * 1000
        return SearchResult(reg.ref, hits, {k: round(v, 2) for k, v in timings.items()}, exact)

    # -- parts ------------------------------------------------------------------------------------
    def _model(self, ref: str | None) -> lifecycle.RegisteredModel:
        if ref:
            reg = lifecycle.get(self.db, ref)
            if reg.type != "embedding":
                raise PhotoscoutError(f"{reg.ref} is a {reg.type} model, not an embedding model")
        else:
            active = lifecycle.active(self.db, "embedding")
            if active is None:
                raise PhotoscoutError("no active embedding model (run: photoscout models install-builtin)")
            reg = active
        if reg.status == "disabled":
            raise PhotoscoutError(f"{reg.ref} is disabled")
        seen = self._has_rows.get(reg.id)
        if seen is not None and time.monotonic() - seen < ESTIMATE_TTL:
            return reg  # it had embeddings a moment ago
        with self.db.connection() as conn:
            row = conn.execute("SELECT EXISTS (SELECT 1 FROM photo_embeddings WHERE model_id = %s)",
                               (reg.id,)).fetchone()
        if row and row[0]:
            self._has_rows[reg.id] = time.monotonic()
        else:
            raise NotFound(f"{reg.ref} has no embeddings yet (run: photoscout jobs start embed --model {reg.ref})")
        return reg

    def _embedder(self, reg: lifecycle.RegisteredModel) -> EmbeddingModel:
        model = self.models.get(reg)
        assert isinstance(model, EmbeddingModel)
        return model

    def _text_vector(self, reg: lifecycle.RegisteredModel, text: str) -> np.ndarray:
        key = (reg.id, text)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        vec = self._embedder(reg).embed_texts([text])[0]
        self._cache[key] = vec
        if len(self._cache) > 1000:
            self._cache.popitem(last=False)
        return vec

    def _image_vector(self, reg: lifecycle.RegisteredModel, path: str | IO[bytes]) -> np.ndarray:
        image = load_rgb(path, max_side=640, min_side=256)
        return self._embedder(reg).embed_images([image])[0]

    def _stored_vector(self, reg: lifecycle.RegisteredModel, photo_id: int) -> np.ndarray:
        expr, _opclass = indexes.column(reg)
        with self.db.connection() as conn:
            row = conn.execute(f"SELECT ({expr})::vector FROM photo_embeddings e WHERE e.model_id = %s "
                               "AND e.photo_id = %s", (reg.id, photo_id)).fetchone()
        if row is None:
            raise NotFound(f"photo {photo_id} has no embedding of {reg.ref}")
        return np.asarray(row[0].to_numpy() if hasattr(row[0], "to_numpy") else row[0], dtype=np.float32)

    def _conn(self, conn: Conn | None) -> AbstractContextManager[Conn]:
        """The search's connection when one is given, else a pooled one for this call."""
        return nullcontext(conn) if conn is not None else self.db.connection()

    def _estimate(self, conn: Conn, where: str, params: list[Any]) -> float:
        """The planner's estimate of the photos a filter keeps (remembered for a minute: statistics move slowly)."""
        key = (where, repr(params))
        now = time.monotonic()
        hit = self._estimates.get(key)
        if hit is not None and now - hit[1] < ESTIMATE_TTL:
            return hit[0]
        plan = conn.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM photos p WHERE {where}", params).fetchone()
        estimate = float(plan[0][0]["Plan"]["Plan Rows"]) if plan else float(EXACT_BELOW)
        if len(self._estimates) > 1000:
            self._estimates.clear()
        self._has_rows.clear()
        self._estimates[key] = (estimate, now)
        return estimate

    def _probes(self, reg: lifecycle.RegisteredModel) -> int:
        if reg.id not in self._probes_cache:
            found = indexes.info(self.db, reg)
            self._probes_cache[reg.id] = found["probes"] if found else indexes.MIN_PROBES
        return self._probes_cache[reg.id]

    def _nearest(self, reg: lifecycle.RegisteredModel, query: np.ndarray, filters: Filters,
                 limit: int, own_category: str | None = None,
                 widen: bool = True, conn: Conn | None = None) -> tuple[list[tuple[int, float]], bool]:
        """The ``limit`` nearest photos passing ``filters``, and whether the scan was exact. An index scan widens
        (more probes, up to 8x) until ``limit`` photos pass the filter; with ``widen`` false it probes half the
        usual lists and returns what passes there (a supporting ranking: fast, possibly short)."""
        expr, _opclass = indexes.column(reg)
        if reg.config.get("storage") == "halfvec":
            q: Any = HalfVector(query)
        else:
            q = query
        where, params = filters.sql()
        mid = int(reg.id)
        if own_category:
            where += (f" AND p.id IN (SELECT a.photo_id FROM photo_analysis a WHERE a.model_id = {mid} "
                      "AND a.categories @> ARRAY[%s]::text[])")
            params.append(own_category)
        filtered = filters.active or bool(own_category)
        with self._conn(conn) as conn:
            exact = False
            if filtered:  # the planner's estimate decides: exact scan for a selective filter
                exact = self._estimate(conn, where, params) < EXACT_BELOW
            probes = self._probes(reg)
            if not widen:  # a supporting ranking: the nearest half of the usual lists, no widening
                probes = max(indexes.MIN_PROBES, probes // 2)
            conn.execute("SELECT set_config('ivfflat.probes', %s, true), "
                         "set_config('ivfflat.iterative_scan', 'relaxed_order', true), "
                         "set_config('ivfflat.max_probes', %s, true), set_config('enable_indexscan', %s, true)",
                         (str(probes), str(max(probes * 8, 100) if widen else probes), "off" if exact else "on"))
            part_expr, _opclass, part = indexes.indexed(reg)
            if part_expr != expr and not exact:  # the index holds the leading part: candidates, then re-ranked
                qp: Any = HalfVector(query[:part]) if isinstance(q, HalfVector) else query[:part]
                sql = (f"SELECT c.photo_id, c.v <=> %s AS dist FROM (SELECT e.photo_id, {expr} AS v "
                       f"FROM photo_embeddings e JOIN photos p ON p.id = e.photo_id WHERE e.model_id = {mid} "
                       f"AND {where} ORDER BY {part_expr} <=> %s LIMIT %s) c ORDER BY dist LIMIT %s")
                candidates = max(limit * RERANK_FACTOR, RERANK_MIN) if widen else limit
                rows = conn.execute(sql, [q, *params, qp, candidates, limit]).fetchall()
            else:
                sql = (f"SELECT e.photo_id, {expr} <=> %s AS dist FROM photo_embeddings e "
                       f"JOIN photos p ON p.id = e.photo_id WHERE e.model_id = {mid} AND {where} "
                       f"ORDER BY {expr} <=> %s LIMIT %s")
                rows = conn.execute(sql, [q, *params, q, limit]).fetchall()
            if exact:  # the rest of the transaction plans as usual
                conn.execute("SELECT set_config('enable_indexscan', 'on', true)")
            if filtered and not exact:  # relaxed order: re-sort the few rows exactly
                rows.sort(key=lambda r: r[1])
        return [(int(r[0]), 1.0 - float(r[1])) for r in rows], exact

    def _feedback(self, best: list[int], candidates: list[int], conn: Conn) -> list[tuple[int, float]]:
        """The candidates ranked by cosine to the mean (of unit) image features of ``best``, the featurizer being the
        active few-shot model's (features are kept per photo for few-shot classes); none without one."""
        if len(best) < 2:
            return []
        row = conn.execute("SELECT id FROM model_registry WHERE type = 'few_shot' AND purpose = 'default' "
                           "AND status = 'active'").fetchone()
        if row is None:
            return []
        mid = int(row[0])
        mean = conn.execute("SELECT avg(l2_normalize(features)) FROM photo_features WHERE model_id = %s "
                            "AND photo_id = ANY(%s)", (mid, best)).fetchone()
        if mean is None or mean[0] is None:
            return []
        rows = conn.execute("SELECT photo_id, 1 - (features <=> %s) AS sim FROM photo_features WHERE model_id = %s "
                            "AND photo_id = ANY(%s) ORDER BY sim DESC", (mean[0], mid, candidates)).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]

    def _text_meaning(self, reg: lifecycle.RegisteredModel, query: np.ndarray, filters: Filters,
                      limit: int, conn: Conn | None = None) -> list[tuple[int, float]]:
        """Photos whose OCR text, embedded by this version's text side, is closest to the query (exact scan: only
        photos with text have such a vector)."""
        dim = int(reg.config["dim"])
        where, params = filters.sql()
        with self._conn(conn) as conn:
            rows = conn.execute(
                f"SELECT t.photo_id, 1 - ((t.embedding::halfvec({dim})) <=> %s) FROM photo_text_embeddings t "
                f"JOIN photos p ON p.id = t.photo_id WHERE t.model_id = {int(reg.id)} AND {where} "
                f"ORDER BY (t.embedding::halfvec({dim})) <=> %s LIMIT %s",
                [HalfVector(query), *params, HalfVector(query), limit]).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]

    def _ocr(self, text: str, filters: Filters, limit: int, conn: Conn | None = None) -> list[tuple[int, str]]:
        """Full-text search of OCR text: any of the query's terms or words they begin ("total" finds "totals"),
        best-covered photos first. Where that finds fewer than ``limit`` photos, the query's longer words are also
        looked for inside the OCR text with everything but letters and digits squeezed out: OCR splits words
        ("TOT AL") and runs them together ("SUBTOTAL"), and full-text search misses both."""
        terms = ocr_terms(text)
        if not terms:
            return []
        where, params = filters.sql()
        with self._conn(conn) as conn:
            rows = conn.execute(
                f"SELECT t.photo_id, ts_headline('simple', t.text, q, '"
                f"MaxWords=12, MinWords=3, StartSel=«, StopSel=»') FROM photo_text t "
                f"JOIN photos p ON p.id = t.photo_id JOIN model_registry m ON m.id = t.model_id "
                f"AND m.status = 'active', to_tsquery('simple', %s) q "
                f"WHERE t.tsv @@ q AND {where} ORDER BY ts_rank(t.tsv, q, 1) DESC LIMIT %s",
                [" | ".join(f"{t}:*" for t in terms), *params, limit]).fetchall()
            inside = [t for t in terms if len(t) >= SQUEEZED_MIN]
            if inside and len(rows) < limit:  # the squeezed text is scanned (no index): only when needed
                rows += conn.execute(
                    f"SELECT t.photo_id, left(regexp_replace(t.text, '\\s+', ' ', 'g'), 80) FROM photo_text t "
                    f"JOIN photos p ON p.id = t.photo_id JOIN model_registry m ON m.id = t.model_id "
                    f"AND m.status = 'active' WHERE {where} AND t.squeezed LIKE ANY(ARRAY("  # ARRAY(): once, not by row
                    f"SELECT '%%' || ocr_squeeze(w) || '%%' FROM unnest(%s::text[]) w WHERE ocr_squeeze(w) <> '')) "
                    f"AND t.photo_id <> ALL(%s) ORDER BY length(t.squeezed), t.photo_id LIMIT %s",
                    [*params, inside, [r[0] for r in rows], limit - len(rows)]).fetchall()
        return [(int(r[0]), str(r[1])) for r in rows]

    @staticmethod
    def _scores(vector_hits: list[tuple[int, float]], ocr_hits: list[tuple[int, str]],
                category_hits: list[tuple[int, float]], ocr_weight: float,
                meaning_hits: list[tuple[int, float]], feedback: list[tuple[int, float]] | None = None,
                ) -> tuple[dict[int, float], dict[int, list[str]]]:
        """Reciprocal-rank fusion: score = sum over rankings of weight / (60 + rank); and why each photo scored."""
        scores: dict[int, float] = {}
        why: dict[int, list[str]] = {}
        for rank, (pid, sim) in enumerate(vector_hits):
            scores[pid] = scores.get(pid, 0) + 1 / (RRF_K + rank + 1)
            why.setdefault(pid, []).append(f"image similarity {sim:.3f}")
        for rank, (pid, _sim) in enumerate(sorted(category_hits, key=lambda h: -h[1])):
            scores[pid] = scores.get(pid, 0) + 1 / (RRF_K + rank + 1)
            why.setdefault(pid, []).append("in a category the query names")
        for rank, (pid, sim) in enumerate(meaning_hits):
            if sim < TEXT_MEANING_MIN:
                break
            scores[pid] = scores.get(pid, 0) + OCR_WEIGHT / (RRF_K + rank + 1)
            why.setdefault(pid, []).append(f"text in photo means something close ({sim:.2f})")
        for rank, (pid, snippet) in enumerate(ocr_hits):
            scores[pid] = scores.get(pid, 0) + ocr_weight / (RRF_K + rank + 1)
            why.setdefault(pid, []).append(f"text in photo: {snippet}")
        for rank, (pid, sim) in enumerate(feedback or []):
            scores[pid] = scores.get(pid, 0) + 1 / (RRF_K + rank + 1)
            why.setdefault(pid, []).append(f"looks like the best matches ({sim:.2f})")
        return scores, why

    def _fuse(self, reg: lifecycle.RegisteredModel, vector_hits: list[tuple[int, float]],
              ocr_hits: list[tuple[int, str]], category_hits: list[tuple[int, float]], ocr_weight: float,
              meaning_hits: list[tuple[int, float]], feedback: list[tuple[int, float]], *, limit: int,
              skip: int = 0, conn: Conn | None = None) -> list[Hit]:
        """The fused ranking's photos ``skip`` to ``limit``, with their paths, categories and reasons."""
        scores, why = self._scores(vector_hits, ocr_hits, category_hits, ocr_weight, meaning_hits, feedback)
        sims = dict(vector_hits) | dict(category_hits)
        top = sorted(scores, key=lambda p: -scores[p])[skip:limit]
        if not top:
            return []
        with self._conn(conn) as c, c.cursor(row_factory=dict_row) as cur:
            rows = {r["id"]: r for r in cur.execute(
                "SELECT p.id, p.path, p.thumbnail, p.categories, p.taken_at, (SELECT a.labels FROM photo_analysis a "
                "WHERE a.photo_id = p.id AND a.model_id = %s) AS labels FROM photos p WHERE p.id = ANY(%s)",
                (reg.id, top))}
        hits = []
        for pid in top:
            r = rows.get(pid)
            if r is None:
                continue
            reasons = why[pid]
            if r["labels"]:
                reasons.append("looks like " + ", ".join(lbl for lbl, _p in r["labels"][:3]))
            hits.append(Hit(pid, r["path"], round(scores[pid], 5), reasons, sims.get(pid), r["thumbnail"],
                            list(r["categories"]), r["taken_at"].isoformat() if r["taken_at"] else None))
        return hits
