#!/usr/bin/env bash
# evalloop.sh [N] [ROUNDS]: a plain function-call loop (N calls of a trivial
# function, best of 5, timed with time.perf_counter) inside a wisp request
# against the same loop in plain /usr/bin/python3, ROUNDS times each,
# alternating. Prints each figure in ms and the median ratio wisp/python3.
# WISP=path picks the binary (default bin/wisp). Python code inside wisp must
# run at the interpreter's own speed (issue 8, point 10: the eval breaker).
set -euo pipefail
n=${1:-1000000}; rounds=${2:-5}
wisp=${WISP:-bin/wisp}
py=/usr/bin/python3
appdir=testdata/apps/embed
port=$((20000 + RANDOM % 20000))
"$wisp" run --python $py --access-log off --threads 2 --bind 127.0.0.1:$port "$appdir/app.py" 2>/tmp/evalloop.log &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
# warm the thread up with a few requests first, as a server would be
for _ in $(seq 20); do curl -s -o /dev/null "http://127.0.0.1:$port/"; done
ratios=()
for _ in $(seq "$rounds"); do
	w=$(curl -sf "http://127.0.0.1:$port/loop?$n")
	p=$(cd "$appdir" && $py -c "import sys; sys.modules['_wisp'] = type(sys)('_wisp'); import app; print('%.6f' % min(app.loop($n) for _ in range(5)))")
	r=$(awk -v a="$w" -v b="$p" 'BEGIN{printf "%.3f", a/b}')
	ratios+=("$r")
	awk -v a="$w" -v b="$p" -v r="$r" 'BEGIN{printf "wisp=%.2fms python3=%.2fms ratio=%s\n", a*1000, b*1000, r}'
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END{print "median ratio wisp/python3=" a[int((NR+1)/2)]}'
