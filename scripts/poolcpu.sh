#!/usr/bin/env bash
# poolcpu.sh APP_DIR TARGET PROCESSES: req/s, p99 and server CPU microseconds per
# request summed over the supervisor and its worker processes (wisp run --processes N).
set -euo pipefail
dir=$1; target=$2; procs=$3
wisp=$(realpath "${WISP:-bin/wisp}")
port=$((20000 + RANDOM % 20000))
( cd "$dir" && exec "$wisp" run --python /usr/bin/python3 --access-log off --processes "$procs" --bind 127.0.0.1:$port "$target" ) 2>/tmp/poolcpu.log &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.2; done
sleep 1
wrk -t2 -c64 -d2s "http://127.0.0.1:$port/" >/dev/null
cpu() { local t=0 p; for p in $pid $(pgrep -P $pid); do t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
t0=$(cpu); out=$(wrk -t2 -c64 -d${DUR:-5}s --latency "http://127.0.0.1:$port/"); t1=$(cpu)
n=$(echo "$out" | awk '/requests in/{print $1}')
hz=$(getconf CLK_TCK)
echo "req/s=$(echo "$out" | awk '/Requests\/sec/{print $2}') p99=$(echo "$out" | awk '/ 99%/{print $2}') cpu_us_per_req=$(awk -v a=$t0 -v b=$t1 -v n=$n -v hz=$hz 'BEGIN{printf "%.1f", (b-a)/hz*1e6/n}')"
