#!/usr/bin/env bash
# The team's MLflow tracking server: runs and metrics in a SQLite store, artifacts (audio,
# reports, previews) proxied by the server into a folder, both under one shared path.
#
#   scripts/mlflow_server.sh [STORE_DIR]     # default: mlflow-server/ in the project root
#
# Environment: MLFLOW_HOST (default 127.0.0.1; 0.0.0.0 to serve the network), MLFLOW_PORT
# (5000), MLFLOW_BACKEND_URI (instead of the SQLite file, e.g. postgresql://user@db/mlflow),
# MLFLOW_ALLOWED_HOSTS (the names clients use for this machine when it serves the network).
# Trainers on any machine then log to it with MLFLOW_TRACKING_URI=http://<host>:<port>.
set -euo pipefail
store="$(mkdir -p "${1:-mlflow-server}" && cd "${1:-mlflow-server}" && pwd)"
mkdir -p "$store/artifacts"
args=(
  --backend-store-uri "${MLFLOW_BACKEND_URI:-sqlite:///$store/mlflow.db}"
  --artifacts-destination "$store/artifacts"
  --host "${MLFLOW_HOST:-127.0.0.1}" --port "${MLFLOW_PORT:-5000}"
)
[[ -n "${MLFLOW_ALLOWED_HOSTS:-}" ]] && args+=(--allowed-hosts "$MLFLOW_ALLOWED_HOSTS")
echo "MLflow server: store $store; trainers log with" \
  "MLFLOW_TRACKING_URI=http://${MLFLOW_HOST:-127.0.0.1}:${MLFLOW_PORT:-5000}"
exec mlflow server "${args[@]}"
