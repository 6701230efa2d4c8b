#!/bin/sh
# Entrypoint of the wasl image: reads the PostgreSQL password from a file (a compose or Kubernetes
# secret) into PGPASSWORD, which the database driver uses when WASL_DATABASE_URL carries no
# password, so the password never appears in the URL, the environment of the compose file, or
# `docker inspect`. Then runs `wasl "$@"`.
set -eu
if [ -n "${PGPASSWORD_FILE:-}" ]; then
  PGPASSWORD="$(cat "$PGPASSWORD_FILE")"
  export PGPASSWORD
  unset PGPASSWORD_FILE
fi
exec /usr/local/bin/wasl "$@"
