#!/usr/bin/env bash
# Upload the W&B runs that were recorded offline (results/logs/wandb/offline-run-*).
# Usage: wandb login && scripts/wandb_sync.sh [logs_dir]
set -euo pipefail
logs_dir="${1:-results/logs}"
shopt -s nullglob
runs=("$logs_dir"/wandb/offline-run-*)
if [ ${#runs[@]} -eq 0 ]; then
  echo "no offline W&B runs under $logs_dir/wandb"
  exit 0
fi
"$(dirname "$0")/../.venv/bin/wandb" sync "${runs[@]}"
