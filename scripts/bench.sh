#!/usr/bin/env bash
# bench.sh [bench.py flags...]: runs ../shared/bench (the peers side by side) with
# wisp added as a server row. Default: the like-for-like one-process comparison of
# issue 2 (every server 1 process x 4 threads) on every workload.
#   scripts/bench.sh                                  # all workloads, 1 x 4
#   scripts/bench.sh --workloads hello --duration 5   # quicker
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$root/../shared/bench}
[ -x "$root/bin/wisp" ] || (cd "$root" && go build -o bin/wisp ./cmd/wisp)
row="wisp=$root/bin/wisp run --python {python} --access-log off --bind 127.0.0.1:{port} --threads {threads} {app_module}:{app_callable}"
servers=${SERVERS:-wisp,uwsgi,uwsgi-http11,gunicorn-gthread,mod_wsgi,waitress}
cd "$bench"
exec /usr/bin/python3 bench.py --server "$row" --servers "$servers" --workers "${WORKERS:-1}" --threads "${THREADS:-4}" \
  --out "${OUT:-$root/bench-results}" "$@"
