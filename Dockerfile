# A slim, non-root image: `docker run --env-file .env -v mcpcord-data:/data mcpcord`
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    STORAGE__PATH=/data/bot.db \
    BOT_CONFIG=/app/config.yaml

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip install --no-cache-dir ".[tools]" \
    && useradd --create-home --uid 10001 mcpcord \
    && mkdir -p /data && chown mcpcord:mcpcord /data
COPY config.yaml ./

USER mcpcord
VOLUME ["/data"]
# SIGTERM lets running answers finish (shutdown_grace_s) before the bot exits.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "bot"]
