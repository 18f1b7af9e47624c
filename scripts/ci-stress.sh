#!/usr/bin/env bash
# The suite where a new user would run it and on a busy machine (issue 8,
# "Secrets and load"): this commit cloned into a fresh 0700 directory (as root's
# home is), dependencies installed there, then `npm test` with two CPU-bound
# processes beside it. Needs root, as the lab tests do.
#
#   scripts/ci-stress.sh [vitest args]        e.g. scripts/ci-stress.sh --project e2e
#
# STRESS_DIR: where the 0700 directory is made (default: $HOME).
# STRESS_NODE_MODULES: copy node_modules from here instead of `npm ci` (offline).
# STRESS_HOGS: CPU-bound processes beside the suite (default: 2).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
ref=$(git -C "$src" rev-parse HEAD)
base=$(mktemp -d "${STRESS_DIR:-$HOME}/etcd-rescue-stress.XXXXXX")
chmod 700 "$base"
hogs=()
cleanup() {
  for p in "${hogs[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$base"
}
trap cleanup EXIT

git clone -q "$src" "$base/etcd-rescue"
cd "$base/etcd-rescue"
git checkout -q --detach "$ref"
if [ -n "${STRESS_NODE_MODULES:-}" ]; then cp -a "$STRESS_NODE_MODULES" node_modules
else npm ci --no-audit --no-fund </dev/null; fi

for _ in $(seq "${STRESS_HOGS:-2}"); do
  timeout 3000 sh -c 'while :; do :; done' &
  hogs+=("$!")
done
echo "stress: $ref in $base (mode $(stat -c %a "$base")), ${#hogs[@]} CPU hogs (pids ${hogs[*]:-none}), $(nproc) cores"
start=$(date +%s)
status=0
npm test -- "$@" </dev/null || status=$?
echo "stress: npm test exited $status after $(( $(date +%s) - start )) s"
exit "$status"
