#!/usr/bin/env bash
# bench-tls.sh: HTTPS (HTTP/1.1) and HTTP/2 benchmark of wisp against its peers, every one of
# them terminating TLS itself, with the same self-signed certificate (made by
# scripts/bench-tls/gencert.sh in a temp folder), on 127.0.0.1 only.
#
#   WISP=/tmp/wisp-bench-bin/wisp scripts/bench-tls.sh
#
# Rows (each 2 processes x 4 threads where the server has that notion; apps and settings as
# ../shared/bench/bench.py runs them in plain HTTP, so the two sets of numbers compare):
#   wisp          $WISP run --certfile --keyfile --threads 4          (in-process, 1 x 4)
#   wisp-pool     the same with --processes 2                         (2 x 4)
#   caddy-wisp    Caddy (tls, reverse_proxy) in front of wisp's plain-HTTP pool (2 x 4)
#   gunicorn      gunicorn -k gthread -w 2 --threads 4 --certfile --keyfile
#   uwsgi         uWSGI --https-socket (TLS in the workers; no keep-alive, so Connection: close
#                 as the plain bench's uwsgi row: one TLS handshake per request)
#   uwsgi-router  uWSGI --https (its HTTPS router process, --http-keepalive) in front of 2 x 4
#   mod_wsgi      Apache 2.4 event MPM + mod_ssl + mod_http2 (Protocols h2 http/1.1) + mod_wsgi
#                 daemon mode processes=2 threads=4 (scripts/bench-tls/apache.conf)
#   static only:  caddy-file (Caddy file_server), apache-file (Apache, -DSTATIC), against
#                 wisp / wisp-pool --static /static=FOLDER (Go serves the file)
# Workloads, in this order, each server in turn in the order above, a fresh server for every run:
#   hello   wrk -t2 -c64 https://.../             hello:application (13 bytes)
#   flask   wrk -t2 -c64 https://.../?name=bench&n=5   flask_app:app
#   h2      h2load -t2 -c16 -m16 -D 10 https://.../  hello, only where ALPN gives h2 (checked with
#           curl --http2 first); elsewhere the row says "no h2"
#   static  wrk -t2 -c8 https://.../static/file-10MiB.bin  (MB/s)
# Every measured run follows a warm-up on the same URL. Server CPU is the utime+stime (and that of
# reaped children) of every process in the server's session (it is started with setsid), read from
# /proc before and after the measured run. Each server run holds flock /tmp/bench.lock, as
# ../shared/bench does, so it never overlaps another load test (NO_LOCK=1 to skip).
#
# Environment (defaults): WISP (bin/wisp)  APPS (../shared/bench/apps)  SERVERS (all rows above)
#   WORKLOADS (hello,flask,h2,static)  DURATION (10)  WARMUP (2)  CONNS (64)  H2_CONNS (16)
#   H2_STREAMS (16)  STATIC_CONNS (8)  PROCESSES (2)  THREADS (4)  READY_TIMEOUT (20)
#   ROUNDS (1: more repeats the whole sequence, and the report shows each cell's median run)
#   OUT (docs/bench)  KEEP_TMP (0: the temp folder is removed unless a run failed)  WISP_SRC (a
#   git tree whose commit the report names as the wisp source)
# Installs nothing: it names the Debian packages that are missing and stops.
# Exit code: 0 when every run gave numbers ("no h2" counts as a result), 1 when a run failed
# (a server that did not answer within READY_TIMEOUT s, a bad response, a load tool that failed),
# 2 for missing tools or bad settings.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
here=$root/scripts/bench-tls
PY=/usr/bin/python3
WISP=${WISP:-bin/wisp}
APPS=${APPS:-$root/../shared/bench/apps}
SERVERS=${SERVERS:-wisp,wisp-pool,caddy-wisp,gunicorn,uwsgi,uwsgi-router,mod_wsgi}
WORKLOADS=${WORKLOADS:-hello,flask,h2,static}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
H2_CONNS=${H2_CONNS:-16}
H2_STREAMS=${H2_STREAMS:-16}
STATIC_CONNS=${STATIC_CONNS:-8}
PROCESSES=${PROCESSES:-2}
THREADS=${THREADS:-4}
READY_TIMEOUT=${READY_TIMEOUT:-20}
ROUNDS=${ROUNDS:-1}
OUT=${OUT:-$root/docs/bench}
LOCK=${LOCK:-/tmp/bench.lock}
STATIC_FILE=file-10MiB.bin
STATIC_BYTES=10485760

die() { echo "bench-tls: $*" >&2; exit 2; }
log() { printf '%s\n' "$*" >&2; }

# --- settings and tools -------------------------------------------------------------------------
case $WISP in
/*) ;;
*) if [[ -e $WISP ]]; then WISP=$(realpath "$WISP"); else WISP=$root/$WISP; fi ;;
esac
IFS=, read -ra servers <<<"$SERVERS"
IFS=, read -ra workloads <<<"$WORKLOADS"
known_servers=" wisp wisp-pool caddy-wisp gunicorn uwsgi uwsgi-router mod_wsgi "
for s in "${servers[@]}"; do [[ $known_servers == *" $s "* ]] || die "unknown server '$s' (known:${known_servers% })"; done
for w in "${workloads[@]}"; do [[ " hello flask h2 static " == *" $w "* ]] || die "unknown workload '$w' (known: hello flask h2 static)"; done
for v in DURATION WARMUP CONNS H2_CONNS H2_STREAMS STATIC_CONNS PROCESSES THREADS READY_TIMEOUT ROUNDS; do
  [[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || die "$v must be a positive integer, not '${!v}'"
done
has() { [[ ",$SERVERS," == *",$1,"* ]]; }
hasw() { [[ ",$WORKLOADS," == *",$1,"* ]]; }

missing=()
need_cmd() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need_file() { [[ -e $1 ]] || missing+=("$2"); }
need_cmd curl curl
need_cmd openssl openssl
need_cmd setsid util-linux
need_cmd flock util-linux
need_cmd wrk wrk
need_file $PY python3
hasw h2 && need_cmd h2load nghttp2-client
if has caddy-wisp; then need_cmd caddy caddy; fi
if has gunicorn; then $PY -c 'import gunicorn' 2>/dev/null || missing+=(gunicorn); fi
if has uwsgi || has uwsgi-router; then
  need_cmd uwsgi uwsgi-core
  need_file /usr/lib/uwsgi/plugins/python3_plugin.so uwsgi-plugin-python3
fi
if has mod_wsgi; then
  need_file /usr/sbin/apache2 apache2
  need_file /usr/lib/apache2/modules/mod_ssl.so apache2
  need_file /usr/lib/apache2/modules/mod_http2.so apache2
  need_file /usr/lib/apache2/modules/mod_wsgi.so libapache2-mod-wsgi-py3
fi
if hasw flask; then $PY -c 'import flask' 2>/dev/null || missing+=(python3-flask); fi
if ((${#missing[@]})); then
  readarray -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  die "missing Debian packages: ${missing[*]}
  install them with:  apt-get install -y ${missing[*]}"
fi
if has wisp || has wisp-pool || has caddy-wisp; then
  [[ -x $WISP ]] || die "no wisp binary at $WISP: build one (make build) or pass WISP=PATH"
fi
[[ -f $APPS/hello.py && -f $APPS/flask_app.py ]] || die "no hello.py/flask_app.py in APPS=$APPS"
APPS=$(realpath "$APPS")
mkdir -p "$OUT"

# --- scratch folder, certificate, static file ------------------------------------------------
TMP=$(mktemp -d /tmp/bench-tls.XXXXXX)
chmod 755 "$TMP" # Apache's www-data children and mod_wsgi daemons reach their sockets here
mkdir -p "$TMP/tls" "$TMP/www/static"
"$here/gencert.sh" "$TMP/tls"
CERT=$TMP/tls/cert.pem
KEY=$TMP/tls/key.pem
head -c $STATIC_BYTES /dev/urandom >"$TMP/www/static/$STATIC_FILE"
chmod -R a+rX "$TMP/www"
RESULTS=$TMP/results.tsv
CMDS=$TMP/commands.tsv
: >"$RESULTS"
: >"$CMDS"
HZ=$(getconf CLK_TCK)
failures=0
live_sids=() # sessions (= the started process's pid) still to stop
lockfd=
loadpid=

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [[ -n ${loadpid:-} ]] && kill "$loadpid" 2>/dev/null
  if ((${#live_sids[@]})); then stop_sessions "${live_sids[@]}"; fi
  [[ -n $lockfd ]] && flock -u "$lockfd" 2>/dev/null
  if [[ ${KEEP_TMP:-0} == 1 ]] || ((failures)) || ((rc != 0)); then
    log "bench-tls: scratch folder (server logs) kept: $TMP"
  else
    rm -rf "$TMP"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- process sessions: CPU and stop ------------------------------------------------------------
# session_stat SID...: prints "PROCS TICKS PIDS..." summed over every process whose session is
# one of SID (utime+stime+cutime+cstime, so children that exited and were reaped still count).
session_stat() {
  local want=" $* " f line rest n=0 t=0 pids=()
  local -a a
  for f in /proc/[0-9]*/stat; do
    { read -r line <"$f"; } 2>/dev/null || continue
    rest=${line##*) }
    read -ra a <<<"$rest" # a[0]=state a[1]=ppid a[2]=pgrp a[3]=session ... a[11]=utime
    [[ $want == *" ${a[3]} "* ]] || continue
    n=$((n + 1))
    t=$((t + a[11] + a[12] + a[13] + a[14]))
    pids+=("${f//[^0-9]/}")
  done
  echo "$n $t ${pids[*]}"
}
ticks() { local s; s=$(session_stat "$@"); s=${s#* }; echo "${s%% *}"; }

# stop_sessions SID...: SIGTERM each server's process group, up to 15 s for the whole session
# to exit, then SIGKILL what is left of it.
stop_sessions() {
  local sid st i
  for sid; do kill -TERM -- "-$sid" 2>/dev/null || true; done
  for ((i = 0; i < 150; i++)); do
    st=$(session_stat "$@")
    [[ ${st%% *} == 0 ]] && break
    sleep 0.1
  done
  st=$(session_stat "$@")
  if [[ ${st%% *} != 0 ]]; then
    log "    (still running after 15 s, SIGKILL: ${st#* * })"
    for i in ${st#* * }; do kill -KILL "$i" 2>/dev/null || true; done
  fi
  for sid; do
    wait "$sid" 2>/dev/null || true
    for i in "${!live_sids[@]}"; do [[ ${live_sids[i]} == "$sid" ]] && unset 'live_sids[i]'; done
  done
  live_sids=("${live_sids[@]}")
}

# alive PID: running (an exited child stays a zombie until reaped, and kill -0 still succeeds).
alive() {
  local st
  { read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
  st=${st##*) }
  [[ ${st:0:1} != Z ]]
}

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start LOG VAR=VALUE... -- CMD...: runs CMD in $APPS in a new session (setsid, no fork: the pid
# is the session id), with PYTHONPATH=$APPS and the given environment; sets $started.
start() {
  local logf=$1 envs=()
  shift
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  (
    cd "$APPS"
    if [[ -n $lockfd ]]; then exec {lockfd}>&-; fi # the server does not hold the bench lock
    exec env PYTHONPATH="$APPS" PYTHONDONTWRITEBYTECODE=1 TMPDIR="$run" "${envs[@]}" setsid "$@"
  ) </dev/null >"$logf" 2>&1 &
  started=$!
  live_sids+=("$started")
}

# wait_ready URL PID...: until URL answers 200 over TLS (curl -k), at most READY_TIMEOUT s.
wait_ready() {
  local url=$1 p code
  shift
  local deadline=$((${EPOCHREALTIME/./} + READY_TIMEOUT * 1000000))
  while ((${EPOCHREALTIME/./} < deadline)); do
    for p; do alive "$p" || { why="exited before answering (see its log)"; return 1; }; done
    code=$(curl -sk --max-time 2 -o "$run/probe" -w '%{http_code}' "$url" 2>/dev/null) || true
    [[ $code == 200 ]] && return 0
    sleep 0.2
  done
  why="did not answer 200 at $url within ${READY_TIMEOUT} s (last status '${code:-none}')"
  return 1
}

# check_body WORKLOAD: the probe response is the right one.
check_body() {
  case $1 in
  hello | h2) [[ $(<"$run/probe") == "Hello, World!" ]] ;;
  flask) grep -Eq '"hello": ?"bench"' "$run/probe" && grep -Eq '"squares": ?\[0, ?1, ?4, ?9, ?16\]' "$run/probe" ;;
  static) cmp -s "$run/probe" "$TMP/www/static/$STATIC_FILE" ;;
  esac
}

# show CMD...: the command line for the report, with this run's port and folder made generic.
show() {
  local s="" a
  for a; do
    if [[ $a =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
      s+=" $a"
    elif [[ $a != *\'* ]]; then
      s+=" '$a'"
    else
      s+=" $(printf %q "$a")"
    fi
  done
  s=${s# }
  s=${s//$here\//scripts/bench-tls/}
  s=${s//$TMP/\$TMP}
  s=${s//$APPS/\$APPS}
  s=${s//$WISP/\$WISP}
  s=${s//:$port/:PORT}
  [[ -n ${uport:-} ]] && s=${s//:$uport/:UPSTREAM}
  [[ -n ${uport:-} ]] && s=${s//BT_UPSTREAM=$uport/BT_UPSTREAM=UPSTREAM}
  s=${s//BT_PORT=$port/BT_PORT=PORT}
  echo "$s"
}

# record WORKLOAD SERVER STATUS RPS MBS P50 P99 MEAN REQUESTS NON2XX ERRORS CPU_S CPU_DETAIL WALL NOTE
# (and the run's TLS handshake, $tlsinfo, as the last field)
record() {
  local IFS=$'\t'
  echo "$*"$'\t'"${tlsinfo:-}" >>"$RESULTS"
}

# tls_info PORT: what a client offering h2 and http/1.1 gets: protocol, cipher, key exchange, ALPN.
tls_info() {
  timeout 5 openssl s_client -connect "127.0.0.1:$1" -alpn h2,http/1.1 </dev/null 2>&1 | awk '
    /^New, / { sub(/^New, /, ""); sub(/, Cipher is /, " "); vc=$0 }
    /^Server Temp Key: / { sub(/^Server Temp Key: /, ""); sub(/, [0-9]+ bits$/, ""); gsub(/, /, " "); k=$0 }
    /^ALPN protocol: / { a=$3 }
    END { printf "%s %s, ALPN %s", vc, k, (a == "" ? "none" : a) }'
}

# --- one run -------------------------------------------------------------------------------------
# Sets up the server(s) of (workload, server), waits, checks, warms up, measures, stops.
run_one() {
  local w=$1 s=$2 app path sids=() url cmdline="" cmdline2="" wisp_base=() c
  tlsinfo=""
  run=$TMP/r$((++runno))-$w-$s
  mkdir -p "$run"
  chmod 755 "$run"
  port=$(free_port)
  uport=""
  case $w in
  hello | h2) app=hello:application path=/ ;;
  flask) app=flask_app:app path="/?name=bench&n=5" ;;
  static) app=hello:application path=/static/$STATIC_FILE ;;
  esac
  local module=${app%%:*} callable=${app##*:}
  url="https://127.0.0.1:$port$path"
  wisp_base=("$WISP" run --python $PY --access-log off)
  local static_flags=()
  [[ $w == static ]] && static_flags=(--static "/static=$TMP/www/static")
  case $s in
  wisp)
    c=("${wisp_base[@]}" --bind "127.0.0.1:$port" --certfile "$CERT" --keyfile "$KEY" --threads "$THREADS" "${static_flags[@]}" "$app")
    start "$run/server.log" -- "${c[@]}"
    cmdline=$(show "${c[@]}")
    ;;
  wisp-pool)
    c=("${wisp_base[@]}" --bind "127.0.0.1:$port" --certfile "$CERT" --keyfile "$KEY" --processes "$PROCESSES" --threads "$THREADS" "${static_flags[@]}" "$app")
    start "$run/server.log" -- "${c[@]}"
    cmdline=$(show "${c[@]}")
    ;;
  caddy-wisp)
    uport=$(free_port)
    c=("${wisp_base[@]}" --bind "127.0.0.1:$uport" --processes "$PROCESSES" --threads "$THREADS" "$app")
    start "$run/wisp.log" -- "${c[@]}"
    cmdline2=$(show "${c[@]}")
    local wisp_sid=$started
    # Caddy after its upstream is up, so its first requests do not meet a closed port.
    if ! wait_plain "http://127.0.0.1:$uport$path" "$wisp_sid"; then
      fail_run "$w" "$s" "wisp upstream $why" "$run/wisp.log"
      stop_sessions "$wisp_sid"
      return
    fi
    c=(caddy run --config "$here/Caddyfile.proxy" --adapter caddyfile)
    start "$run/server.log" BT_RUN="$run" BT_PORT="$port" BT_UPSTREAM="$uport" BT_CERT="$CERT" BT_KEY="$KEY" \
      HOME="$run" XDG_DATA_HOME="$run" XDG_CONFIG_HOME="$run" -- "${c[@]}"
    cmdline=$(show BT_PORT="$port" BT_UPSTREAM="$uport" BT_CERT="$CERT" BT_KEY="$KEY" "${c[@]}")
    ;;
  caddy-file)
    c=(caddy run --config "$here/Caddyfile.static" --adapter caddyfile)
    start "$run/server.log" BT_RUN="$run" BT_PORT="$port" BT_WWW="$TMP/www" BT_CERT="$CERT" BT_KEY="$KEY" \
      HOME="$run" XDG_DATA_HOME="$run" XDG_CONFIG_HOME="$run" -- "${c[@]}"
    cmdline=$(show BT_PORT="$port" BT_WWW="$TMP/www" BT_CERT="$CERT" BT_KEY="$KEY" "${c[@]}")
    ;;
  gunicorn)
    c=($PY -m gunicorn -b "127.0.0.1:$port" -k gthread -w "$PROCESSES" --threads "$THREADS" --log-level warning
      --certfile "$CERT" --keyfile "$KEY" "$app")
    start "$run/server.log" -- "${c[@]}"
    cmdline=$(show "${c[@]}")
    ;;
  uwsgi)
    c=(uwsgi --plugin python3 --https-socket "127.0.0.1:$port,$CERT,$KEY" --add-header "Connection: close"
      --master --processes "$PROCESSES" --threads "$THREADS" --thunder-lock --listen 1024
      --module "$app" --need-app --die-on-term --disable-logging)
    start "$run/server.log" -- "${c[@]}"
    cmdline=$(show "${c[@]}")
    ;;
  uwsgi-router)
    c=(uwsgi --plugin python3,http --https "127.0.0.1:$port,$CERT,$KEY" --http-keepalive
      --master --processes "$PROCESSES" --threads "$THREADS" --thunder-lock --listen 1024
      --module "$app" --need-app --die-on-term --disable-logging)
    start "$run/server.log" -- "${c[@]}"
    cmdline=$(show "${c[@]}")
    ;;
  mod_wsgi | apache-file)
    local defs=(-DFOREGROUND)
    [[ $s == apache-file ]] && defs+=(-DSTATIC)
    local aenv=(BT_RUN="$run" BT_PORT="$port" BT_CERT="$CERT" BT_KEY="$KEY" BT_APPS="$APPS"
      BT_APP_PATH="$APPS/$module.py" BT_CALLABLE="$callable" BT_PROCESSES="$PROCESSES" BT_THREADS="$THREADS"
      BT_STATIC="$TMP/www/static")
    c=(/usr/sbin/apache2 -f "$here/apache.conf" "${defs[@]}")
    start "$run/server.log" "${aenv[@]}" -- "${c[@]}"
    if [[ $s == apache-file ]]; then
      cmdline=$(show BT_PORT="$port" BT_STATIC="$TMP/www/static" "${c[@]}")
    else
      cmdline=$(show BT_PORT="$port" BT_APP_PATH="$APPS/$module.py" BT_CALLABLE="$callable" BT_PROCESSES="$PROCESSES" BT_THREADS="$THREADS" "${c[@]}")
    fi
    ;;
  esac
  sids+=("$started")
  [[ -n ${wisp_sid:-} && $s == caddy-wisp ]] && sids+=("$wisp_sid")
  printf '%s\t%s\t%s\t%s\n' "$w" "$s" "$cmdline" "$cmdline2" >>"$CMDS"

  local t_start=$EPOCHREALTIME
  if ! wait_ready "$url" "${sids[@]}"; then
    fail_run "$w" "$s" "server $why" "$run/server.log" "$run/error.log"
    stop_sessions "${sids[@]}"
    return
  fi
  log "    up in $(awk -v a="$t_start" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}') s"
  if ! check_body "$w"; then
    fail_run "$w" "$s" "wrong response body: $(head -c 200 "$run/probe" | tr -d '\n')" "$run/server.log"
    stop_sessions "${sids[@]}"
    return
  fi

  tlsinfo=$(tls_info "$port") || true
  if [[ $w == h2 ]]; then
    measure_h2 "$s" "$url" "${sids[@]}"
  else
    local conns=$CONNS
    [[ $w == static ]] && conns=$STATIC_CONNS
    measure_wrk "$w" "$s" "$url" "$conns" "${sids[@]}"
  fi
  stop_sessions "${sids[@]}"
}

wait_plain() { # wait_plain URL PID: the plain-HTTP upstream of caddy-wisp answers 200
  local url=$1 p=$2 code
  local deadline=$((${EPOCHREALTIME/./} + READY_TIMEOUT * 1000000))
  while ((${EPOCHREALTIME/./} < deadline)); do
    alive "$p" || { why="exited before answering"; return 1; }
    code=$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "$url" 2>/dev/null) || true
    [[ $code == 200 ]] && return 0
    sleep 0.2
  done
  why="did not answer 200 at $url within ${READY_TIMEOUT} s"
  return 1
}

# load OUT CMD...: runs a load generator in the background and waits for it, so that a signal to
# this script is acted on at once (bash runs a trap only once the foreground command is done).
load() {
  local out=$1
  shift
  "$@" </dev/null >"$out" 2>&1 &
  loadpid=$!
  wait "$loadpid" || true
  loadpid=
}

fail_run() { # fail_run WORKLOAD SERVER REASON LOG...
  local w=$1 s=$2 why=$3 f
  shift 3
  failures=$((failures + 1))
  log "    FAILED: $s $w: $why"
  for f; do
    [[ -s $f ]] || continue
    log "    --- last lines of $f:"
    tail -n 12 "$f" | sed 's/^/    | /' >&2
  done
  record "$w" "$s" FAIL "" "" "" "" "" "" "" "" "" "" "" "$why"
}

measure_wrk() {
  local w=$1 s=$2 url=$3 conns=$4
  shift 4
  local sids=("$@") out line t0 t1 tc0=0 tc1=0 w0 w1
  load "$run/warmup.out" wrk -t2 -c"$conns" -d"${WARMUP}s" --timeout 10s "$url"
  sleep 0.5
  curl -sk --max-time 60 -o /dev/null "$url" || true # returns once the warm-up's queue has drained
  t0=$(ticks "${sids[@]}")
  [[ $s == caddy-wisp ]] && tc0=$(ticks "${sids[0]}")
  w0=$EPOCHREALTIME
  load "$run/wrk.out" wrk -t2 -c"$conns" -d"${DURATION}s" --timeout 10s -s "$here/wrk-report.lua" "$url"
  out=$(<"$run/wrk.out")
  w1=$EPOCHREALTIME
  t1=$(ticks "${sids[@]}")
  [[ $s == caddy-wisp ]] && tc1=$(ticks "${sids[0]}")
  line=$(grep '^WRK ' <<<"$out" || true)
  if [[ -z $line ]]; then
    fail_run "$w" "$s" "wrk failed: $(tail -n 3 <<<"$out" | tr '\n' ' ')" "$run/server.log"
    return
  fi
  alive_or_fail "$w" "$s" || return
  local -a f
  read -ra f <<<"$line" # WRK requests duration_us bytes connect read write status timeout p50 p99 mean
  local detail=""
  [[ $s == caddy-wisp ]] && detail="caddy $(awk -v a="$tc0" -v b="$tc1" -v hz="$HZ" 'BEGIN{printf "%.1f", (b-a)/hz}') + wisp $(awk -v a="$((t0 - tc0))" -v b="$((t1 - tc1))" -v hz="$HZ" 'BEGIN{printf "%.1f", (b-a)/hz}')"
  local row
  row=$(awk -v req="${f[1]}" -v dus="${f[2]}" -v bytes="${f[3]}" -v p50="${f[9]}" -v p99="${f[10]}" -v mean="${f[11]}" \
    -v t0="$t0" -v t1="$t1" -v hz="$HZ" -v w0="$w0" -v w1="$w1" \
    'BEGIN{ s=dus/1e6; printf "%.1f\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f", req/s, bytes/s/1048576, p50/1000, p99/1000, mean/1000, (t1-t0)/hz, w1-w0 }')
  local rps mbs p50 p99 mean cpu wall
  IFS=$'\t' read -r rps mbs p50 p99 mean cpu wall <<<"$row"
  local errs=$((f[4] + f[5] + f[6] + f[8]))
  record "$w" "$s" ok "$rps" "$mbs" "$p50" "$p99" "$mean" "${f[1]}" "${f[7]}" "$errs" "$cpu" "$detail" "$wall" \
    "wrk -t2 -c$conns -d${DURATION}s$( ((errs)) && echo "; socket errors: connect ${f[4]} read ${f[5]} write ${f[6]} timeout ${f[8]}")"
  log "    $(printf '%10s req/s %8s MB/s  p50 %s ms  p99 %s ms  non-2xx %s  sock err %s  server CPU %s s %s' \
    "$rps" "$mbs" "$p50" "$p99" "${f[7]}" "$errs" "$cpu" "${detail:+($detail)}")"
}

alive_or_fail() {
  local st
  st=$(session_stat "${sids[@]}")
  if [[ ${st%% *} == 0 ]] || ! alive "${sids[0]}"; then
    fail_run "$1" "$2" "server died during the run" "$run/server.log"
    return 1
  fi
}

measure_h2() {
  local s=$1 url=$2
  shift 2
  local sids=("$@") ver out t0 t1 tc0=0 tc1=0 w0 w1 proto
  ver=$(curl -sk --http2 --max-time 5 -o /dev/null -w '%{http_version}' "$url" 2>/dev/null) || true
  if [[ $ver != 2 ]]; then
    record h2 "$s" "no h2" "" "" "" "" "" "" "" "" "" "" "" "ALPN: curl --http2 got HTTP/${ver:-?}; h2load would fall back to http/1.1 (pipelined) or fail"
    log "    no h2 (curl --http2 negotiated HTTP/${ver:-?})"
    return
  fi
  local h2=(h2load -t2 -c"$H2_CONNS" -m"$H2_STREAMS")
  load "$run/warmup.out" "${h2[@]}" -D "$WARMUP" "$url"
  sleep 0.5
  t0=$(ticks "${sids[@]}")
  [[ $s == caddy-wisp ]] && tc0=$(ticks "${sids[0]}")
  w0=$EPOCHREALTIME
  load "$run/h2load.out" "${h2[@]}" -D "$DURATION" "$url"
  out=$(<"$run/h2load.out")
  w1=$EPOCHREALTIME
  t1=$(ticks "${sids[@]}")
  [[ $s == caddy-wisp ]] && tc1=$(ticks "${sids[0]}")
  proto=$(sed -n 's/^Application protocol: //p' <<<"$out")
  if [[ $proto != h2 ]]; then
    if [[ -z $proto ]] && ! grep -q '^finished in' <<<"$out"; then
      fail_run h2 "$s" "h2load failed: $(tail -n 3 <<<"$out" | tr '\n' ' ')" "$run/server.log"
    else
      record h2 "$s" "no h2" "" "" "" "" "" "" "" "" "" "" "" "h2load negotiated ${proto:-nothing}"
    fi
    return
  fi
  alive_or_fail h2 "$s" || return
  local detail=""
  [[ $s == caddy-wisp ]] && detail="caddy $(awk -v a="$tc0" -v b="$tc1" -v hz="$HZ" 'BEGIN{printf "%.1f", (b-a)/hz}') + wisp $(awk -v a="$((t0 - tc0))" -v b="$((t1 - tc1))" -v hz="$HZ" 'BEGIN{printf "%.1f", (b-a)/hz}')"
  # finished in 10.00s, 12345.67 req/s, 1.23MB/s
  # requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout
  # status codes: A 2xx, B 3xx, C 4xx, D 5xx
  # time for request:  min  max  mean  sd  +/- sd
  local row
  row=$(awk -v t0="$t0" -v t1="$t1" -v hz="$HZ" -v w0="$w0" -v w1="$w1" '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /^finished in/ { gsub(",", ""); rps=$4; mb=$6; u=mb; sub(/[0-9.]+/, "", u); sub(/[A-Za-z\/]+$/, "", mb)
      mbs = (u ~ /^GB/) ? mb*1024 : (u ~ /^MB/) ? mb : (u ~ /^KB/) ? mb/1024 : mb/1048576 }
    /^requests:/ { gsub(",", ""); done=$6; ok=$8; failed=$10; errored=$12; timeout=$14 }
    /^status codes:/ { gsub(",", ""); non2xx=$5+$7+$9 }
    /^time for request:/ { mean=ms($6) }
    END { printf "%.1f\t%.2f\t%.2f\t%d\t%d\t%d\t%.2f\t%.1f", rps, mbs, mean, ok, non2xx, failed+errored+timeout, (t1-t0)/hz, w1-w0 }' <<<"$out")
  local rps mbs mean req non2xx errs cpu wall
  IFS=$'\t' read -r rps mbs mean req non2xx errs cpu wall <<<"$row"
  record h2 "$s" ok "$rps" "$mbs" "" "" "$mean" "$req" "$non2xx" "$errs" "$cpu" "$detail" "$wall" \
    "h2load -t2 -c$H2_CONNS -m$H2_STREAMS -D $DURATION (protocol $proto)"
  log "    $(printf '%10s req/s  mean %s ms  non-2xx %s  failed %s  server CPU %s s %s' "$rps" "$mean" "$non2xx" "$errs" "$cpu" "${detail:+($detail)}")"
}

# --- the runs ------------------------------------------------------------------------------------
stamp=$(date +%Y%m%d-%H%M%S)
t_all=$SECONDS
runno=0
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
log "bench-tls $stamp: wisp $WISP, apps $APPS, scratch $TMP"
log "  servers: ${servers[*]}; workloads: ${workloads[*]}; ${DURATION}s runs after ${WARMUP}s warm-up; $ROUNDS round(s)"
if [[ ${NO_LOCK:-0} != 1 ]]; then exec {lockfd}>>"$LOCK"; fi
for ((rnd = 1; rnd <= ROUNDS; rnd++)); do
for w in "${workloads[@]}"; do
  rows=()
  if [[ $w == static ]]; then
    for s in "${servers[@]}"; do
      case $s in
      wisp | wisp-pool) rows+=("$s") ;;
      caddy-wisp) rows+=(caddy-file) ;;
      mod_wsgi) rows+=(apache-file) ;;
      esac
    done
  else
    rows=("${servers[@]}")
  fi
  for s in "${rows[@]}"; do
    printf '[%4ds] %s%-7s %-13s\n' $((SECONDS - t_all)) "$( ((ROUNDS > 1)) && echo "round $rnd ")" "$w" "$s" >&2
    if [[ -n $lockfd ]] && ! flock -n "$lockfd"; then
      log "    waiting for $LOCK (another load test is running)..."
      flock "$lockfd"
    fi
    run_one "$w" "$s"
    [[ -n $lockfd ]] && flock -u "$lockfd"
  done
done
done
elapsed=$((SECONDS - t_all))

# --- report --------------------------------------------------------------------------------------
wisp_src=""
[[ -n ${WISP_SRC:-} ]] && wisp_src=$(git -C "$WISP_SRC" log -1 --format='%h %s' 2>/dev/null | cut -c1-90 || true)
ver() { timeout 10 "$@" 2>&1 | head -n 1 || true; }
{
  echo "stamp=$stamp"
  echo "elapsed=$elapsed"
  echo "nproc=$(nproc)"
  echo "kernel=$(uname -sr)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
  echo "os=$(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "loadavg_start=$load_start"
  echo "loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "duration=$DURATION"
  echo "rounds=$ROUNDS"
  echo "warmup=$WARMUP"
  echo "conns=$CONNS"
  echo "h2conns=$H2_CONNS"
  echo "h2streams=$H2_STREAMS"
  echo "staticconns=$STATIC_CONNS"
  echo "processes=$PROCESSES"
  echo "threads=$THREADS"
  echo "wisp=$([[ -x $WISP ]] && ver "$WISP" --version)${wisp_src:+, source $wisp_src}"
  echo "python=$(ver $PY -V)"
  echo "pkgs=$($PY -c 'import importlib.metadata as m
out = []
for n in ("gunicorn", "Flask"):
    try: out.append(f"{n} {m.version(n)}")
    except Exception: pass
print(", ".join(out))' 2>/dev/null)"
  command -v uwsgi >/dev/null && echo "uwsgi=uWSGI $(ver uwsgi --version)"
  [[ -x /usr/sbin/apache2 ]] && echo "apache=$(ver /usr/sbin/apache2 -v | sed 's/^Server version: //'), mod_wsgi $(dpkg-query -W -f='${Version}' libapache2-mod-wsgi-py3 2>/dev/null)"
  command -v caddy >/dev/null && echo "caddy=Caddy $(ver caddy version)"
  echo "openssl=$(ver openssl version)"
  echo "wrk=$(ver wrk -v | cut -d' ' -f1-2)"
  command -v h2load >/dev/null && echo "h2load=$(ver h2load --version)"
  echo "failures=$failures"
} >"$TMP/meta.txt"
md=$OUT/tls-$stamp.md
$PY "$here/report.py" "$TMP/meta.txt" "$RESULTS" "$CMDS" >"$md"
cat "$md"
log ""
log "bench-tls: report written to $md (${elapsed} s)"
if ((failures)); then
  log "bench-tls: $failures run(s) FAILED (see the table and the logs in $TMP)"
  exit 1
fi
