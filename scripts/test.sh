#!/usr/bin/env bash
# Set up (.venv/ with the test tools) and run the whole test suite: lint, type check, tests.
# The tests start their own embedded PostgreSQL servers; Celery tests use Redis/RabbitMQ on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
# The browser tests drive Debian's chromium (Playwright with executable_path): install it when it is missing.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser tests..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || { echo "could not install chromium (apt-get install chromium), which the browser tests need" >&2; exit 1; }
  else
    echo "warning: chromium is not installed (sudo apt-get install chromium); the browser tests will be skipped" >&2
  fi
fi
.venv/bin/ruff check src tests benchmarks
.venv/bin/mypy
.venv/bin/pytest "$@"
