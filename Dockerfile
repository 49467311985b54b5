# mcpcord: a slim, non-root image. `docker compose up` (docker-compose.yaml) runs it next to a
# LiteLLM proxy; alone: `docker run --env-file .env -v mcpcord-data:/data mcpcord`.
FROM python:3.11-slim

# tini is PID 1: it forwards SIGTERM to the bot and reaps the grandchildren that stdio MCP
# servers leave behind (npx and uvx start their server as a child of their own).
# Node (npm, npx) is here because many MCP servers are npm packages.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini nodejs npm \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    STORAGE__PATH=/data/bot.db \
    BOT_CONFIG=/app/config.yaml

WORKDIR /app
# The lock pins every package with its hash (scripts/lock.sh refreshes it).
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip install --no-cache-dir --no-deps . \
    && useradd --create-home --uid 10001 mcpcord \
    && mkdir -p /data && chown mcpcord:mcpcord /data
COPY config.yaml ./

USER mcpcord
VOLUME ["/data"]
# Healthy = the bot touched its heartbeat file lately, which it does only while connected to
# the Discord gateway and while its event loop runs.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-m", "bot", "health"]
# SIGTERM lets running answers finish (shutdown_grace_s) before the bot exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["python", "-m", "bot"]
