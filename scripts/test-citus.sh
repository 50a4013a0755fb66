#!/usr/bin/env bash
# `make test-citus`: the ingest, analytics, property and replica tests against a
# throw-away Citus 13 cluster (a coordinator and two workers on loopback, from
# ../shared/citus), which `migrate` distributes itself. Run as root: the
# cluster's PostgreSQL servers run as the postgres user.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts=${CITUS_SCRIPTS:-}
if [[ -z $scripts ]]; then
  for candidate in ../shared/citus /work/shared/citus; do
    if [[ -x $candidate/cluster.sh ]]; then scripts=$(cd "$candidate" && pwd); break; fi
  done
fi
[[ -n $scripts && -x $scripts/cluster.sh ]] || {
  echo "test-citus: no Citus scripts found; set CITUS_SCRIPTS to the folder holding install.sh and cluster.sh" >&2
  exit 2
}
[[ $(id -u) -eq 0 ]] || { echo "test-citus: run as root (cluster.sh starts PostgreSQL as the postgres user)" >&2; exit 2; }

export PATH="$PWD/.tools/bin:$PATH"  # grpcurl and ghz, as `make` puts them there
dir=${CITUS_DIR:-/tmp/energy-citus-test}
port=${CITUS_PORT:-9700}
# install.sh is idempotent; its load check can fail once right after a build from source.
"$scripts/install.sh" || "$scripts/install.sh"
"$scripts/cluster.sh" stop "$dir" 2>/dev/null || true
rm -rf "$dir"
cleanup() { "$scripts/cluster.sh" stop "$dir" || true; rm -rf "$dir"; }
trap cleanup EXIT
url=$("$scripts/cluster.sh" start "$dir" "$port" 2 | tail -n 1)
echo "test-citus: Citus cluster at $url"
DATABASE_URL=$url .venv/bin/python -m pytest -m "not faults" "$@" \
  tests/test_stream.py tests/test_unary.py tests/test_ingest_rules.py \
  tests/test_analytics.py tests/test_properties.py tests/test_replicas.py tests/test_citus.py \
  tests/test_readme.py
