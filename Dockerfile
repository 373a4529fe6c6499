# handoff worker image: docker build -t handoff . ; see docs/deployment.md
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY handoff ./handoff
RUN pip install . && rm -rf /src

# Table state (RocksDB) is a cache of the changelog topics: per container, never shared.
RUN useradd --system --uid 10001 --home-dir /data handoff \
    && mkdir -p /data && chown handoff /data
USER handoff
WORKDIR /data
ENV HANDOFF_DATA_DIR=/data/handoff-data

ENTRYPOINT ["handoff"]
CMD ["worker", "--role", "processor"]
