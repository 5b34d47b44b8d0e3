#!/usr/bin/env bash
# bench.sh [bench.py flags...]: runs ../shared/bench (the peers side by side) with wisp
# added as server rows:
#   wisp       in-process: one process, --threads {threads}
#   wisp-pool  worker pool: --processes {workers} --threads {threads}
# Issue 2's like-for-like table (every server 1 process x 4 threads):
#   WORKERS=1 scripts/bench.sh --servers wisp,uwsgi,uwsgi-http11,gunicorn-gthread,mod_wsgi,waitress
# Issue 3's pool table (2 processes x 4 threads):
#   WORKERS=2 scripts/bench.sh --servers wisp-pool,uwsgi,uwsgi-http11,gunicorn-gthread,mod_wsgi,waitress
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$root/../shared/bench}
(cd "$root" && go build -o bin/wisp ./cmd/wisp) # as the Makefile builds it
w="$root/bin/wisp run --python {python} --access-log off --bind 127.0.0.1:{port} --threads {threads}"
cd "$bench"
exec /usr/bin/python3 bench.py \
  --server "wisp=$w {app_module}:{app_callable}" \
  --server "wisp-pool=$w --processes {workers} --control-socket {tmpdir}/wisp.sock {app_module}:{app_callable}" \
  --workers "${WORKERS:-1}" --threads "${THREADS:-4}" --out "${OUT:-$root/bench-results}" "$@"
