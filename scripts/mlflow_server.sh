#!/usr/bin/env bash
# The team's MLflow tracking server: runs and metrics in a SQLite store, artifacts (audio,
# reports, previews) proxied by the server into a folder, both under one shared path, and
# MLflow's own basic-auth app in front of both (every request needs a user name and password).
#
#   scripts/mlflow_server.sh [STORE_DIR]     # default: mlflow-server/ in the project root
#
# Environment: MLFLOW_HOST (default 127.0.0.1; 0.0.0.0 to serve the network), MLFLOW_PORT
# (5000), MLFLOW_BACKEND_URI (instead of the SQLite file, e.g. postgresql://user@db/mlflow),
# MLFLOW_ALLOWED_HOSTS (the names clients use for this machine when it serves the network).
#
# Authentication (MLflow's basic-auth app, users in STORE_DIR/basic_auth.db):
#   MLFLOW_AUTH                     basic (default) or none (no access control at all)
#   MLFLOW_AUTH_ADMIN_USERNAME      the admin user created on the first start (admin)
#   MLFLOW_AUTH_ADMIN_PASSWORD      its password (12 characters or more); read on the first start
#                                   only. Unset: a random one is written to
#                                   STORE_DIR/admin-password, readable by this user alone
#   MLFLOW_AUTH_DEFAULT_PERMISSION  what every user may do with experiments others created
#                                   (EDIT: read and log runs; READ; NO_PERMISSIONS)
#   MLFLOW_AUTH_CONFIG_PATH         a basic_auth.ini of your own instead of STORE_DIR's
# Trainers on any machine then log to it with MLFLOW_TRACKING_URI=http://<host>:<port> and
# their own MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD.
set -euo pipefail
store="$(mkdir -p "${1:-mlflow-server}" && cd "${1:-mlflow-server}" && pwd)"
mkdir -p "$store/artifacts"
host="${MLFLOW_HOST:-127.0.0.1}"
port="${MLFLOW_PORT:-5000}"
auth="${MLFLOW_AUTH:-basic}"
args=(
  --backend-store-uri "${MLFLOW_BACKEND_URI:-sqlite:///$store/mlflow.db}"
  --artifacts-destination "$store/artifacts"
  --host "$host" --port "$port"
)
[[ -n "${MLFLOW_ALLOWED_HOSTS:-}" ]] && args+=(--allowed-hosts "$MLFLOW_ALLOWED_HOSTS")

case "$host" in
  127.* | localhost | ::1 | "[::1]") loopback=1 ;;
  *) loopback=0 ;;
esac

# A secret made once per store, kept in a file only this user can read.
secret_file() {
  local file="$store/$1"
  if [[ ! -s "$file" ]]; then
    (umask 077 && python -c 'import secrets; print(secrets.token_urlsafe(24))' >"$file")
  fi
  echo "$file"
}

case "$auth" in
  basic)
    if [[ -z "${MLFLOW_AUTH_CONFIG_PATH:-}" ]]; then
      export MLFLOW_AUTH_CONFIG_PATH="$store/basic_auth.ini"
      cat >"$MLFLOW_AUTH_CONFIG_PATH" <<EOF
# Written by scripts/mlflow_server.sh at each start; set MLFLOW_AUTH_CONFIG_PATH to use your own.
[mlflow]
default_permission = ${MLFLOW_AUTH_DEFAULT_PERMISSION:-EDIT}
database_uri = sqlite:///$store/basic_auth.db
admin_username = ${MLFLOW_AUTH_ADMIN_USERNAME:-admin}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
EOF
    fi
    # The admin's password matters only while the user store is new; MLflow ships none.
    if [[ -z "${MLFLOW_AUTH_ADMIN_PASSWORD:-}" && ! -e "$store/basic_auth.db" ]]; then
      password_file="$(secret_file admin-password)"
      MLFLOW_AUTH_ADMIN_PASSWORD="$(cat "$password_file")"
      export MLFLOW_AUTH_ADMIN_PASSWORD
      echo "MLflow server: first start; the password of user" \
        "'${MLFLOW_AUTH_ADMIN_USERNAME:-admin}' is in $password_file (readable by you alone)"
    fi
    # The auth app signs its forms with this key; every worker and restart must share it.
    if [[ -z "${MLFLOW_FLASK_SERVER_SECRET_KEY:-}" ]]; then
      MLFLOW_FLASK_SERVER_SECRET_KEY="$(cat "$(secret_file flask-secret-key)")"
      export MLFLOW_FLASK_SERVER_SECRET_KEY
    fi
    args+=(--app-name basic-auth)
    if [[ "$loopback" == 0 ]]; then
      echo "MLflow server: serving $host:$port with passwords over plain HTTP; anyone on the" \
        "path can read them. Put a TLS proxy in front or use an SSH tunnel (README:" \
        "Working as a team)." >&2
    fi
    ;;
  none)
    if [[ "$loopback" == 0 ]]; then
      echo "WARNING: MLflow server on $host:$port with no authentication (MLFLOW_AUTH=none):" \
        "anyone who can reach this port can read, change and delete every run and" \
        "artifact. Unset MLFLOW_AUTH to require passwords." >&2
    fi
    ;;
  *)
    echo "scripts/mlflow_server.sh: MLFLOW_AUTH must be basic or none, not '$auth'" >&2
    exit 2
    ;;
esac

echo "MLflow server: store $store; trainers log with" \
  "MLFLOW_TRACKING_URI=http://$host:$port" \
  "$([[ "$auth" == basic ]] && echo "and MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD")"
exec mlflow server "${args[@]}"
