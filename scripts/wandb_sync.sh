#!/usr/bin/env bash
# Upload the W&B runs that were recorded offline (<logs_dir>/wandb/offline-run-*): single runs,
# table rows and sweep trials alike (their W&B group comes with them). Runs already uploaded are
# skipped, so running it again is safe.
# Usage: wandb login && scripts/wandb_sync.sh [logs_dir] [wandb sync options, e.g. --dry-run]
set -euo pipefail
logs_dir="${1:-results/logs}"
shift $(( $# > 0 ? 1 : 0 ))
shopt -s nullglob
runs=("$logs_dir"/wandb/offline-run-*)
if [ ${#runs[@]} -eq 0 ]; then
  echo "no offline W&B runs under $logs_dir/wandb"
  exit 0
fi
# The checkout's .venv when there is one (make install), else the active environment's wandb.
wandb_cli="$(dirname "$0")/../.venv/bin/wandb"
if [ ! -x "$wandb_cli" ]; then
  wandb_cli="$(command -v wandb)" || { echo "wandb is not installed in this environment" >&2; exit 1; }
fi
"$wandb_cli" sync --skip-synced "$@" "${runs[@]}"
