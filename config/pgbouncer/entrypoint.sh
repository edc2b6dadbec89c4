#!/bin/sh
# Starts Debian's pgbouncer on config/pgbouncer/pgbouncer.ini.template (the image's pgbouncer
# stage, Dockerfile). Every template variable comes from the environment, else from
# defaults.env. The auth file is written here, at start, from PGBOUNCER_AUTH_USER and
# PGBOUNCER_AUTH_PASSWORD (a plain password or a SCRAM verifier from pg_authid), into a
# private directory (mode 0700, file 0600) that lives as long as the container: the secret
# is never part of the image (docs/security.md).
set -eu
here=$(dirname "$0")
: "${PGBOUNCER_AUTH_USER:?set PGBOUNCER_AUTH_USER (the app's database user)}"
: "${PGBOUNCER_AUTH_PASSWORD:?set PGBOUNCER_AUTH_PASSWORD (its password or SCRAM verifier)}"

while IFS='=' read -r key value; do
  case "$key" in '' | '#'*) continue ;; esac
  eval "export $key=\"\${$key:-$value}\""
done < "$here/defaults.env"

umask 077
run=$(mktemp -d)
export PGBOUNCER_AUTH_FILE="$run/userlist.txt"
# "user" "secret", a double quote inside either doubled.
quote() { printf '"%s"' "$(printf '%s' "$1" | sed 's/"/""/g')"; }
printf '%s %s\n' "$(quote "$PGBOUNCER_AUTH_USER")" "$(quote "$PGBOUNCER_AUTH_PASSWORD")" \
  > "$PGBOUNCER_AUTH_FILE"
unset PGBOUNCER_AUTH_PASSWORD
envsubst < "$here/pgbouncer.ini.template" > "$run/pgbouncer.ini"
exec pgbouncer "$run/pgbouncer.ini"
