FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
# pg_dump / pg_restore for `piestudy db backup` (Debian 12's client is 15: the db service's major)
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/* && pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --all-extras --no-install-project
COPY backend backend
COPY ml ml
COPY frontend frontend
COPY migrations migrations
COPY alembic.ini ./
RUN uv sync --frozen --no-dev --all-extras
ENV PATH="/app/.venv/bin:$PATH" PIESTUDY_HOST=0.0.0.0 PIESTUDY_VAR_DIR=/data
EXPOSE 8000
CMD ["sh", "-c", "piestudy db upgrade && piestudy serve"]
