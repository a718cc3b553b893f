#!/usr/bin/env bash
# Set up (.venv/ with the test tools) and run the whole test suite: lint, type check, tests.
# The tests start their own embedded PostgreSQL servers; Celery tests use Redis/RabbitMQ on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
.venv/bin/ruff check src tests benchmarks
.venv/bin/mypy
.venv/bin/pytest "$@"
