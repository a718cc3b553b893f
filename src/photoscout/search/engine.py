"""The search engine. One query runs:

1. its meaning (``query.parse``: words, quoted phrases, OCR terms, named categories) and the query embedding (text
   through the model's text side, or a photo through its image side; cached per model);
2. nearest neighbours among the photos' vectors of that model version (``nearest.py``), and a supporting ranking
   per category the query names;
3. for text queries, the text inside photos (``text.py``): full-text search over OCR text and the OCR text's meaning;
4. reciprocal-rank fusion of the rankings (``fusion.py``); each result says why it matched (image similarity, the
   OCR words, the photo's best labels);
5. for text queries, pseudo-relevance feedback: the mean image features (the active few-shot featurizer's) of the
   first screen of that fusion rank the candidates once more, and the rankings are fused again. A query's words
   reach photos through ImageNet classes; what the best matches look like reaches their look-alikes that no class
   names ("headphones": microphone-like photos first, then the photos that look like those).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import IO, Any

import numpy as np

from photoscout.common.errors import InvalidParameter, NotFound, PhotoscoutError
from photoscout.common.imaging import load_rgb
from photoscout.config import Settings
from photoscout.database import Database, indexes
from photoscout.models.base import EmbeddingModel
from photoscout.models.cache import ModelCache
from photoscout.registry import lifecycle
from photoscout.search import fusion, learned, matches, query, text
from photoscout.search.filters import Filters
from photoscout.search.nearest import ESTIMATE_TTL, Conn, Neighbours
from photoscout.search.results import MAX_MATCHES, Hit, SearchResult, check_page, check_sort

MATCHED_TTL = 30.0  # seconds the matches of a search sorted by date are paged from memory (then gathered again)
MATCHED_KEPT = 32  # such searches kept
RANKED_TTL = 600.0  # seconds a relevance ranking's page order is kept for its next pages (scrolling)

__all__ = ["Hit", "SearchEngine", "SearchResult"]


class SearchEngine:
    """Keeps models loaded and query embeddings cached; one per long-running process (CLI, API)."""

    def __init__(self, db: Database, settings: Settings, models: ModelCache | None = None) -> None:
        self.db = db
        self.settings = settings
        self.models = models or ModelCache(settings)
        self.neighbours = Neighbours(db)
        self._cache: OrderedDict[tuple[int, str], np.ndarray] = OrderedDict()
        self._has_rows: dict[int, float] = {}  # version id -> when it was last seen to have embeddings
        self.cutoffs = matches.Cutoffs()
        self._readings: dict[tuple[int, str], str | None] = {}
        self._matched: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._ranked: OrderedDict[tuple[Any, ...], tuple[float, list[int]]] = OrderedDict()
        self._learned: tuple[float, set[str]] | None = None

    def clear_cache(self) -> None:
        """Forget cached query embeddings and matches (an evaluation measures latency with the query embedding
        included)."""
        self._cache.clear()
        self.neighbours.clear()
        self._has_rows.clear()
        self._readings.clear()
        self._matched.clear()
        self._ranked.clear()
        self._learned = None  # the library samples and cutoffs stay: a query's cost is measured, not theirs

    def warm_up(self, model_ref: str | None = None) -> None:
        """Load the model and run one query so the first real search is fast."""
        model = self._model(model_ref)
        vector = self._text_vector(model, "photo")
        with self.db.connection() as conn:  # the estimates a query naming a category asks for
            self.cutoffs.scale(conn, model, vector)  # the library sample what matches is read against
            self.cutoffs.calibrated(conn, model)
            for cat in query.CATEGORY_WORDS:
                self.neighbours.estimate(conn, *Filters(categories=(cat,)).sql())

    def search(self, text_query: str | None = None, *, image: str | IO[bytes] | None = None,
               similar_to: int | None = None, limit: int = 20, offset: int = 0, filters: Filters | None = None,
               model_ref: str | None = None, sort: str = "relevance", widen: int = 0,
               only_matches: bool = False) -> SearchResult:
        """``text_query``, or photos like ``image`` (a file) or like the library's photo ``similar_to``; results
        ``offset`` to ``offset + limit`` of the ranking (a page). ``sort`` "date" (newest first) or "-date" (oldest
        first) keeps only the matches (``matches.py``; ``widen`` lowers the cutoff a step at a time), as does
        ``only_matches`` (a smart album) in any order, and counts them."""
        t0 = time.perf_counter()
        meaning = query.parse(text_query)
        # filters and nothing to rank by (``tag:holiday``, or only the filter parameters): listed by date
        listing = meaning.filters_only or (not (meaning.text or meaning.printed) and image is None
                                           and similar_to is None and filters is not None and filters.active)
        asked = meaning.text or meaning.printed or listing
        if sum(map(bool, (asked, image, similar_to is not None))) != 1:
            raise InvalidParameter("give a text query, an image or a photo to search with (one of them)",
                                   "text", "image", "similar_to")
        filters = (filters or Filters()).with_query(meaning)  # quoted words, rating>=N, tag:WORD: filters
        check_page(limit, offset)
        check_sort(sort)
        if not 0 <= widen <= matches.MAX_WIDEN:
            raise InvalidParameter(f"widen must be between 0 and {matches.MAX_WIDEN}", "widen")
        filters.check()
        if listing:  # nothing to rank by: the photos that match, newest (or oldest) first
            with self.db.connection() as conn:
                hits = text.listed(conn, filters, offset, limit, oldest_first=sort == "-date")
                total = text.count_listed(conn, filters) if only_matches or sort != "relevance" else None
            return SearchResult(None, hits, {"total": round((time.perf_counter() - t0) * 1000, 2)}, True, offset,
                                limit, sort, total)
        reg = self._model(model_ref)
        timings: dict[str, float] = {}
        if image:
            try:
                vector = self._image_vector(reg, image)
            except (OSError, ValueError) as exc:
                raise PhotoscoutError(f"cannot read the query image: {exc}") from exc
        elif similar_to is not None:
            vector = self._stored_vector(reg, similar_to)
        else:
            vector = self._text_vector(reg, meaning.text)
            meaning = query.read_as(meaning, self._reading(reg, meaning.text))
        timings["embed"] = (time.perf_counter() - t0) * 1000
        depth = offset + limit
        with self.db.connection() as conn:  # one connection (one transaction) for the rest of the search
            cut = self.cutoffs.calibrated(conn, reg)
            z_cut = matches.widened(cut["z"], widen)
            scale = self.cutoffs.scale(conn, reg, vector)
            cutoff = {**cut, "z": z_cut, "widen": widen, "similarity": round(scale.similarity(z_cut), 4)}
            t1 = time.perf_counter()
            if sort != "relevance" or only_matches:
                key = (reg.id, meaning.text, image is None and similar_to is None, repr(filters), z_cut, sort,
                       similar_to)
                found = None if image is not None else self._matched.get(key)
                if found is None or time.monotonic() - found[0] > MATCHED_TTL:
                    rankings = self._all_matches(conn, reg, vector, meaning, filters, scale.similarity(z_cut))
                    ordered = fusion.order(conn, rankings, by_date=None if sort == "relevance" else sort)
                    found = (time.monotonic(), rankings, ordered)
                    if image is None:
                        self._remember(key, found)
                _when, rankings, (ids, scores, best_frame) = found
                timings["vector"] = (time.perf_counter() - t1) * 1000
                hits = fusion.hits(conn, reg, rankings, ids[offset:depth], scores, best_frame, lambda _p, _s: True)
                timings["total"] = (time.perf_counter() - t0) * 1000
                return SearchResult(reg.ref, hits, {k: round(v, 2) for k, v in timings.items()}, True, offset,
                                    limit, sort, len(ids), cutoff)
            pool = max(depth * 3, 30)  # candidates per ranking before fusion
            key_of_ranking = (reg.id, meaning.text, repr(filters), similar_to, z_cut)
            rankings = fusion.Rankings(
                ocr_weight=fusion.LEADING_OCR_WEIGHT if meaning.printed_leads else fusion.OCR_WEIGHT)
            rankings.vector, exact = self.neighbours.nearest(conn, reg, vector, filters, pool)
            for cat in self._categories(meaning, filters):
                # a supporting ranking, as long as the page: the index scan stops at the usual probes (it may
                # return fewer) instead of widening until enough photos of the category are found (50-70 ms at
                # 100k photos when the query's neighbours are mostly of other categories)
                if reg.status == "active":
                    more, _ = self.neighbours.nearest(conn, reg, vector, filters.with_category(cat), depth,
                                                      widen=False)
                else:  # a version under evaluation is measured with its own categories
                    more, _ = self.neighbours.nearest(conn, reg, vector, filters, depth, own_category=cat,
                                                      widen=False)
                rankings.category += more
            timings["vector"] = (time.perf_counter() - t1) * 1000
            if meaning.text:
                t2 = time.perf_counter()
                rankings.ocr = text.ocr_matches(conn, meaning, filters, pool)
                rankings.meaning = text.meaning_matches(conn, reg, vector, filters, pool)
                rankings.keywords = text.keyword_matches(conn, meaning, filters, pool)
                if learned.key(meaning.text) in self._learned_keys(conn):
                    rankings.learned = learned.ranking(conn, meaning.text, filters, pool)
                timings["ocr"] = (time.perf_counter() - t2) * 1000
            t3 = time.perf_counter()
            if meaning.text:  # the first screen's look, over every candidate of the rankings
                rankings.feedback = fusion.feedback(conn, *rankings.first_screen())
            evidence = rankings.evidence()
            s_cut = scale.similarity(z_cut)
            ids, scores, best_frame = fusion.order(conn, rankings)
            if image is None:  # pages of one ranking stay one ranking: no result twice, none skipped
                ids = self._paged(key_of_ranking, ids, fresh=offset == 0)
            hits = fusion.hits(conn, reg, rankings, ids[offset:depth], scores, best_frame,
                               lambda pid, sim: pid in evidence or (sim is not None and sim >= s_cut))
            timings["fuse"] = (time.perf_counter() - t3) * 1000
        timings["total"] = (time.perf_counter() - t0) * 1000
        return SearchResult(reg.ref, hits, {k: round(v, 2) for k, v in timings.items()}, exact, offset, limit,
                            sort, None, cutoff)

    def _categories(self, meaning: query.Query, filters: Filters) -> list[str]:
        """The categories a query names that rank beside it (none when the filters pick categories)."""
        if filters.categories:
            return []
        return [c for c in meaning.categories if c not in filters.not_categories]

    def _all_matches(self, conn: Conn, reg: lifecycle.RegisteredModel, vector: np.ndarray, meaning: query.Query,
                     filters: Filters, similarity: float) -> fusion.Rankings:
        """Every match of a query (``matches.py``): the photos at least ``similarity`` close (an exact scan), the
        photos with the query's words printed in them or as keywords, and those in the categories it names."""
        rankings = fusion.Rankings()
        rankings.vector = self.neighbours.within(conn, reg, vector, filters, similarity, MAX_MATCHES)
        for cat in self._categories(meaning, filters):
            rankings.category += self.neighbours.within(conn, reg, vector, filters.with_category(cat), -1.0,
                                                        MAX_MATCHES)
        if meaning.text:
            rankings.ocr = text.ocr_matches(conn, meaning, filters, MAX_MATCHES)
            rankings.keywords = text.keyword_matches(conn, meaning, filters, MAX_MATCHES)
        return rankings

    def judge(self, text_query: str, model_ref: str) -> tuple[dict[int, float], set[int]]:
        """What calibrating a version's cutoff needs of a query (``matches.calibrate``): the z of every photo above
        the query's mean similarity, and the photos with evidence that makes a match by itself."""
        meaning = query.parse(text_query)
        reg = self._model(model_ref)
        vector = self._text_vector(reg, meaning.text)
        meaning = query.read_as(meaning, self._reading(reg, meaning.text))
        with self.db.connection() as conn:
            scale = self.cutoffs.scale(conn, reg, vector)
            found = self._all_matches(conn, reg, vector, meaning, Filters().with_query(meaning),
                                      scale.similarity(0.0))
        return {pid: scale.z(sim) for pid, sim in found.vector}, found.evidence()

    def _learned_keys(self, conn: Conn) -> set[str]:
        """The learned queries, re-read every ``ESTIMATE_TTL`` seconds (at once after ``clear_cache``)."""
        if self._learned is None or time.monotonic() - self._learned[0] > ESTIMATE_TTL:
            self._learned = (time.monotonic(), learned.keys(conn))
        return self._learned[1]

    def _paged(self, key: tuple[Any, ...], ids: list[int], *, fresh: bool) -> list[int]:
        """The order of a ranking's pages: a first page starts it; a later page keeps the order already given and
        adds the rest of this (deeper, so slightly different) fusion after it. Kept ``RANKED_TTL`` seconds."""
        found = self._ranked.get(key)
        if not fresh and found is not None and time.monotonic() - found[0] < RANKED_TTL:
            given = set(found[1])
            ids = [*found[1], *(p for p in ids if p not in given)]
        self._ranked[key] = (time.monotonic(), ids)
        self._ranked.move_to_end(key)
        while len(self._ranked) > MATCHED_KEPT:
            self._ranked.popitem(last=False)
        return ids

    def _remember(self, key: tuple[Any, ...], found: Any) -> None:
        self._matched[key] = found
        self._matched.move_to_end(key)
        while len(self._matched) > MATCHED_KEPT:
            self._matched.popitem(last=False)

    def around(self, text_query: str, photo_id: int, rank: int) -> tuple[tuple[int, int] | None,
                                                                           tuple[int, int] | None]:
        """The results before and after ``photo_id``, found at ``rank`` of a search for ``text_query``: (photo,
        rank) of each, or None at an end (or when the photo is no longer there)."""
        start = max(rank - 1, 0)
        ids = [h.photo_id for h in self.search(text_query, limit=3, offset=start).hits]
        if photo_id not in ids:
            return None, None
        i = ids.index(photo_id)
        before = (ids[i - 1], rank - 1) if i > 0 else None
        after = (ids[i + 1], rank + 1) if i + 1 < len(ids) else None
        return before, after

    def nearest(self, reg: lifecycle.RegisteredModel, vector: np.ndarray, filters: Filters, limit: int,
                conn: Conn | None = None) -> tuple[list[tuple[int, float]], bool]:
        """The vector ranking alone (benchmarks and tests measure it): ``Neighbours.nearest`` on a connection."""
        if conn is not None:
            return self.neighbours.nearest(conn, reg, vector, filters, limit)
        with self.db.connection() as own:
            return self.neighbours.nearest(own, reg, vector, filters, limit)

    # -- the query vector -------------------------------------------------------------------------------
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

    def embedder(self, reg: lifecycle.RegisteredModel) -> EmbeddingModel:
        model = self.models.get(reg)
        assert isinstance(model, EmbeddingModel)
        return model

    def _text_vector(self, reg: lifecycle.RegisteredModel, text_query: str) -> np.ndarray:
        key = (reg.id, text_query)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        vec = self.embedder(reg).embed_queries([text_query])[0]
        self._cache[key] = vec
        if len(self._cache) > 1000:
            self._cache.popitem(last=False)
        return vec

    def _reading(self, reg: lifecycle.RegisteredModel, text_query: str) -> str | None:
        """The English words a query in another language is read as (``EmbeddingModel.read_queries``), cached."""
        key = (reg.id, text_query)
        if key not in self._readings:
            if len(self._readings) > 1000:
                self._readings.clear()
            self._readings[key] = self.embedder(reg).read_queries([text_query])[0]
        return self._readings[key]

    def _image_vector(self, reg: lifecycle.RegisteredModel, path: str | IO[bytes]) -> np.ndarray:
        image = load_rgb(path, max_side=640, min_side=256)
        return self.embedder(reg).embed_images([image])[0]

    def _stored_vector(self, reg: lifecycle.RegisteredModel, photo_id: int) -> np.ndarray:
        expr, _opclass = indexes.column(reg)
        with self.db.connection() as conn:
            row = conn.execute(f"SELECT ({expr})::vector FROM photo_embeddings e WHERE e.model_id = %s "
                               "AND e.photo_id = %s", (reg.id, photo_id)).fetchone()
        if row is None:
            raise NotFound(f"photo {photo_id} has no embedding of {reg.ref}")
        return np.asarray(row[0].to_numpy() if hasattr(row[0], "to_numpy") else row[0], dtype=np.float32)
