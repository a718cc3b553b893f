#!/bin/sh
# The container's first start installs the built-in models (from the wheels in the image: no download) and adds
# /photos as a root of the library; every start then serves it, with the service watching and rescanning it.
# Listening beyond loopback needs a token: the home's own (/data/data/api-token, made on first start) unless
# PHOTOSCOUT_TOKEN is given.
set -eu
if ! photoscout models list --json | grep -q '"status": "active"'; then
  photoscout models install-builtin --wheels /opt/photoscout/wheels
fi
if [ -d /photos ] && ! photoscout roots list --json | grep -q '"path": "/photos"'; then
  photoscout index /photos --no-models || true   # the service runs the models on them as jobs
fi
exec photoscout serve --host 0.0.0.0 --port 8765 "$@"
