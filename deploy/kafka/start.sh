#!/usr/bin/env bash
# The kafka service's command (docker-compose.yml): the image's own start (/etc/kafka/docker/run,
# configured by the KAFKA_* environment), then, once the broker answers on its loopback listener,
# the SCRAM users and ACLs of acls.txt. The healthcheck passes only after that (the marker file), and
# lifemon and everyone else wait for it, so no client ever meets a broker without its ACLs.
set -euo pipefail
marker=/tmp/lifemon-acls-applied
internal=127.0.0.1:9094
rm -f "$marker"
/etc/kafka/docker/run &
broker=$!
trap 'kill -TERM "$broker"; wait "$broker"' TERM INT
until /opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server "$internal" > /dev/null 2>&1; do
    kill -0 "$broker" 2> /dev/null || exit 1  # the broker died before it was up: so does the service
    sleep 1
done
"$(dirname "$0")/apply-acls.sh" "$internal"
touch "$marker"
wait "$broker"
