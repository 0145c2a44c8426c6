# lifemon: the streaming PFI-lifecycle monitor. Used by docker-compose.yml (`lifemon run`).
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LIFEMON_DATA_DIR=/var/lib/lifemon

WORKDIR /app
COPY . /app

# Installed as root, editable: the DDL (clickhouse/*.sql) and the policy catalog are read from /app.
# The engine's door, its duplicates window, the Avro reader and bulk_query's quiet path are C
# (streams/_door.c, streams/_ids.c, streams/_avro.c, detectors/_window.c): the compiler is
# installed for the build, then removed.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && pip install --no-cache-dir -e . \
 && apt-get purge -y --auto-remove gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/* /app/build \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/lifemon --shell /usr/sbin/nologin lifemon \
 && mkdir -p /var/lib/lifemon \
 && chown lifemon:lifemon /var/lib/lifemon

USER lifemon
WORKDIR /var/lib/lifemon
VOLUME ["/var/lib/lifemon"]

ENTRYPOINT ["lifemon"]
CMD ["run"]
