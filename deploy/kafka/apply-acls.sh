#!/usr/bin/env bash
# Gives each principal of acls.txt its SCRAM-SHA-512 credential (password from the environment:
# SCRAM_PASSWORD_<PRINCIPAL>, upper case) and adds every ACL line. Run by start.sh against the
# broker's loopback listener (PLAINTEXT, reachable only inside the container); both steps are
# idempotent, so it runs at every start and a changed password takes effect then.
#
#   apply-acls.sh BOOTSTRAP [ACLS_FILE]     KAFKA_BIN: the Kafka tools' folder (/opt/kafka/bin)
set -euo pipefail
bootstrap="$1"
acls="${2:-$(dirname "$0")/acls.txt}"
bin="${KAFKA_BIN:-/opt/kafka/bin}"

lines() { grep -v '^[[:space:]]*#' "$acls" | grep -v '^[[:space:]]*$'; }

# The password goes through a file readable by this user only, never a command line (ps shows those).
umask 077
secret_file="$(mktemp)"
trap 'rm -f "$secret_file"' EXIT
for principal in $(lines | awk '{print $1}' | sort -u); do
    var="SCRAM_PASSWORD_${principal^^}"
    password="${!var:?$var must be set: the SCRAM password of Kafka principal $principal}"
    printf 'SCRAM-SHA-512=[iterations=8192,password=%s]\n' "$password" > "$secret_file"
    "$bin/kafka-configs.sh" --bootstrap-server "$bootstrap" --alter --entity-type users \
        --entity-name "$principal" --add-config-file "$secret_file" > /dev/null
done

lines | while read -r principal operations resource pattern name; do
    case "$resource" in
        topic) target=(--topic "$name") ;;
        group) target=(--group "$name") ;;
        *) echo "acls.txt: unknown resource type '$resource' for $principal" >&2; exit 1 ;;
    esac
    ops=()
    for op in ${operations//,/ }; do ops+=(--operation "$op"); done
    "$bin/kafka-acls.sh" --bootstrap-server "$bootstrap" --add --allow-principal "User:$principal" \
        "${ops[@]}" "${target[@]}" --resource-pattern-type "$pattern" > /dev/null
done
echo "lifemon: Kafka SCRAM users and ACLs of $acls applied"
