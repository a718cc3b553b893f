"""Facts about the schema (``sql/``) that code in several places relies on, written down once."""

from __future__ import annotations

# Every table holding what one model version produced, each with a ``model_id`` column naming the version; in an
# order that deletes children before parents. All but ``MODEL_LEVEL_TABLES`` also have a ``photo_id``: those rows
# describe one photo. The scanner (a file's pixels changed), prune (a version goes) and disk accounting use this list.
OUTPUT_TABLES = ("region_embeddings", "detections", "photo_embeddings", "photo_text_embeddings", "photo_analysis",
                 "photo_text", "photo_captions", "photo_features", "fewshot_classes", "learned_queries",
                 "photo_model_runs")
# a few-shot class belongs to the version that made its prototype, a learned query to the one that made its direction
MODEL_LEVEL_TABLES = ("fewshot_classes", "learned_queries")
PHOTO_OUTPUT_TABLES = tuple(t for t in OUTPUT_TABLES if t not in MODEL_LEVEL_TABLES)


def shown(alias: str = "p") -> str:
    """The photos that search and the models see: readable, each standing for its stack (a RAW+JPEG pair or a
    Live Photo is one photo: ``library/stacks.py``), and a video through its frames (``library/frames.py``).
    The one place this is written."""
    return f"{alias}.status = 'ok' AND {alias}.stack_of IS NULL AND {alias}.media_kind <> 'video'"


def listed(alias: str = "p") -> str:
    """The photos the grid lists and ``status`` counts: as ``shown``, but a video as itself, not its frames."""
    return f"{alias}.status = 'ok' AND {alias}.stack_of IS NULL AND {alias}.media_kind <> 'frame'"
