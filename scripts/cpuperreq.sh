#!/usr/bin/env bash
# cpuperreq.sh APP_DIR TARGET [wrk args...]: server CPU microseconds per request,
# a figure that other load on the machine disturbs far less than req/s. With
# WISP_FLAGS="--processes N" it sums the CPU of the supervisor and its workers
# (rss_kb is then the supervisor's).
set -euo pipefail
dir=$1; target=$2; shift 2
wisp=$(realpath "${WISP:-bin/wisp}")
port=$((20000 + RANDOM % 20000))
( cd "$dir" && exec "$wisp" run --python /usr/bin/python3 --access-log off --bind 127.0.0.1:$port ${WISP_FLAGS:-} "$target" ) 2>/tmp/cpuperreq.log &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
wrk -t2 -c64 -d2s "$@" "http://127.0.0.1:$port/${URLPATH:-}" >/dev/null
# CPU of wisp and of its worker processes (WISP_FLAGS="--processes N" runs a pool)
cpu() { local t=0 p; for p in $pid $(pgrep -P $pid); do t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
t0=$(cpu)
out=$(wrk -t2 -c64 -d${DUR:-5}s --latency "$@" "http://127.0.0.1:$port/${URLPATH:-}")
t1=$(cpu)
reqs=$(echo "$out" | awk '/requests in/{print $1}')
rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
p99=$(echo "$out" | awk '/ 99%/{print $2}')
hz=$(getconf CLK_TCK)
echo "req/s=$rps p99=$p99 cpu_us_per_req=$(awk -v a=$t0 -v b=$t1 -v n=$reqs -v hz=$hz 'BEGIN{printf "%.1f", (b-a)/hz*1e6/n}') rss_kb=$(awk '/VmHWM/{print $2}' /proc/$pid/status)"
