# syntax=docker/dockerfile:1
# Multi-stage image: build wheels with compilers, run on a slim base as a non-root user.

FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir --upgrade pip
COPY pyproject.toml README.md ./
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# PgBouncer in front of PostgreSQL (docker-compose.yml's `pgbouncer` service builds this
# stage): Debian's package, as CI runs it; entrypoint.sh renders the configuration and the
# auth file from the environment at start (config/pgbouncer/). The app's stage stays last,
# so a plain `docker build .` builds the app.
FROM debian:bookworm-slim AS pgbouncer
RUN apt-get update \
    && apt-get install -y --no-install-recommends pgbouncer gettext-base \
    && rm -rf /var/lib/apt/lists/*
COPY config/pgbouncer/ /etc/pgbouncer/tenantkit/
USER postgres
EXPOSE 6432
HEALTHCHECK --interval=5s --timeout=3s --retries=20 \
    CMD bash -c 'exec 3<>/dev/tcp/127.0.0.1/6432' || exit 1
ENTRYPOINT ["/etc/pgbouncer/tenantkit/entrypoint.sh"]

FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APP_ENV=production \
    PORT=8000 \
    APP_WS_PORT=9000
RUN groupadd --system app && useradd --system --gid app --home-dir /app app
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY --chown=app:app . .
# collectstatic needs settings that pass the production guard; these values exist only
# for this build step.
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_hex(32))')" \
    JWT_SECRET="$(python -c 'import secrets; print(secrets.token_hex(32))')" \
    ALLOWED_HOSTS=localhost DEBUG=false \
    python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p /app/var && chown -R app:app /app/var /app/staticfiles
USER app
EXPOSE 8000 9000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/health', timeout=2)" || exit 1
# A streamed export of a large address book outlives gunicorn's default 30 s worker
# timeout (1,000,000 contacts took 60-80 s in bench/); GUNICORN_TIMEOUT bounds it instead.
CMD ["sh", "-c", "gunicorn config.wsgi:application --bind 0.0.0.0:${PORT} --workers ${WEB_CONCURRENCY:-2} --timeout ${GUNICORN_TIMEOUT:-300}"]
