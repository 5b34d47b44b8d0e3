#!/usr/bin/python3
"""report.py META RESULTS COMMANDS: the Markdown report of scripts/bench-tls.sh.

META is key=value lines; RESULTS is one tab-separated line per run (workload, server, status, rps,
MB/s, p50 ms, p99 ms, mean ms, requests, non-2xx, errors, server CPU s, CPU detail, wall s, note);
COMMANDS is (workload, server, command line, upstream command line).
"""
import sys

FIELDS = ["workload", "server", "status", "rps", "mbs", "p50", "p99", "mean", "requests",
          "non2xx", "errors", "cpu", "cpu_detail", "wall", "note", "tls"]
WISP_ROWS = {"wisp", "wisp-pool"}  # every other row is a peer (caddy-wisp: the proxy deployment)
TITLES = {
    "hello": "HTTPS hello (HTTP/1.1 keep-alive)",
    "flask": "HTTPS flask (HTTP/1.1 keep-alive)",
    "h2": "HTTP/2 hello (h2load)",
    "static": "static 10 MiB file over HTTPS (HTTP/1.1)",
}
SHORT = {"hello": "HTTPS hello req/s", "flask": "HTTPS flask req/s", "h2": "h2 hello req/s"}
ORDER = ["wisp", "wisp-pool", "caddy-wisp", "gunicorn", "uwsgi", "uwsgi-router", "mod_wsgi",
         "caddy-file", "apache-file"]
WHAT = {
    "wisp": "wisp in-process (1 process × threads), TLS by wisp",
    "wisp-pool": "wisp worker pool (processes × threads), TLS by wisp",
    "caddy-wisp": "Caddy (TLS, h2) → reverse_proxy → wisp's plain-HTTP pool",
    "gunicorn": "gunicorn gthread, TLS by gunicorn (Python ssl)",
    "uwsgi": "uWSGI --https-socket: TLS in the workers, no keep-alive (Connection: close)",
    "uwsgi-router": "uWSGI --https: its HTTPS router process (keep-alive) → workers",
    "mod_wsgi": "Apache event MPM + mod_ssl + mod_http2 + mod_wsgi daemon mode",
    "caddy-file": "Caddy file_server",
    "apache-file": "Apache event MPM + mod_ssl, Alias (no Python)",
}


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def fmt(v, digits=0):
    x = num(v)
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def median_run(w, runs):
    """The run of median throughput among the good ones (the last run when none is good), with
    the spread of all good runs and the count of failed ones in its note."""
    key = "mbs" if w == "static" else "rps"
    ok = sorted((r for r in runs if r["status"] == "ok" and num(r[key]) is not None), key=lambda r: num(r[key]))
    if not ok:
        return runs[-1]
    m = dict(ok[(len(ok) - 1) // 2])
    if len(runs) > 1:
        extra = f"median of {len(ok)} runs: {num(ok[0][key]):,.0f}–{num(ok[-1][key]):,.0f}"
        if len(ok) < len(runs):
            extra += f"; {len(runs) - len(ok)} run(s) {', '.join(sorted({r['status'] for r in runs if r['status'] != 'ok'}))}"
        m["note"] = f"{m['note']}; {extra}"
    return m


def main():
    meta = {}
    for line in open(sys.argv[1]):
        k, _, v = line.rstrip("\n").partition("=")
        meta[k] = v
    rows = []
    for line in open(sys.argv[2]):
        parts = line.rstrip("\n").split("\t")
        parts += [""] * (len(FIELDS) - len(parts))
        rows.append(dict(zip(FIELDS, parts)))
    cmds = {}
    for line in open(sys.argv[3]):
        parts = line.rstrip("\n").split("\t") + ["", ""]
        cmds.setdefault(parts[1], {})[parts[0]] = (parts[2], parts[3])

    workloads = []
    for r in rows:
        if r["workload"] not in workloads:
            workloads.append(r["workload"])
    runs = {}
    for r in rows:
        runs.setdefault((r["workload"], r["server"]), []).append(r)
    by = {k: median_run(k[0], v) for k, v in runs.items()}

    def servers_of(ws):
        seen = [s for s in ORDER if any((w, s) in by for w in ws)]
        return seen + sorted({r["server"] for r in rows if r["workload"] in ws} - set(seen))

    def metric(w):
        return "mbs" if w == "static" else "rps"

    def best_peer(w):
        vals = [num(by[(w, s)][metric(w)]) for s in servers_of([w])
                if s not in WISP_ROWS and by[(w, s)]["status"] == "ok"]
        vals = [v for v in vals if v]
        return max(vals) if vals else None

    def cell(w, s, digits=0):
        r = by.get((w, s))
        if r is None:
            return "–", "–"
        if r["status"] == "no h2":
            return "no h2", "–"
        if r["status"] != "ok":
            return "FAIL", "–"
        v = num(r[metric(w)])
        b = best_peer(w)
        flag = " ⚠" if (num(r["non2xx"]) or num(r["errors"])) else ""
        return fmt(v, digits) + flag, (f"{v / b:.2f}" if b and v is not None else "–")

    def cpu_per_req(r):
        cpu, req = num(r["cpu"]), num(r["requests"])
        return cpu * 1e6 / req if r["status"] == "ok" and cpu is not None and req else None

    def cpu_cell(w, s):
        r = by.get((w, s))
        if r is None:
            return "–", "–"
        if r["status"] != "ok":
            return ("no h2" if r["status"] == "no h2" else "FAIL"), "–"
        v = cpu_per_req(r)
        peers = [cpu_per_req(by[(w, x)]) for x in servers_of([w]) if x not in WISP_ROWS]
        peers = [x for x in peers if x]
        b = min(peers) if peers else None
        return (f"{v:,.0f}" if v is not None else "–"), (f"{v / b:.2f}" if b and v is not None else "–")

    out = []
    p = out.append
    p(f"# TLS benchmark: wisp and its peers, each terminating TLS itself — {meta['stamp']}\n")
    p(f"_{meta['nproc']} cores ({meta['cpu']}), {meta['kernel']}, {meta['os']}, shared with the load "
      f"generator and other work; load average {meta.get('loadavg_start', '?')} at the start, {meta['loadavg']} "
      f"at the end; whole run {meta['elapsed']} s._\n")
    rounds = int(meta.get("rounds", "1") or 1)
    p(f"_Every run: a fresh server, {meta['warmup']} s warm-up on the same URL, {meta['duration']} s measured"
      + (f" ({rounds} rounds of the whole sequence; each cell is its median run)" if rounds > 1 else "") + "; "
      f"{meta['processes']} processes × {meta['threads']} threads where the server has that notion (wisp "
      f"in-process: 1 × {meta['threads']}); one self-signed ECDSA P-256 certificate for every server "
      f"(the handshake each one chose is in the details); wrk -t2 -c{meta['conns']} for hello/flask, h2load -t2 -c{meta['h2conns']} "
      f"-m{meta['h2streams']} for HTTP/2, wrk -t2 -c{meta['staticconns']} for the static file. Server CPU = "
      f"utime+stime of the server's whole process tree during the measured run (caddy-wisp: Caddy + wisp)._\n")
    p("_Absolute numbers on this box move by ±30 % between runs (see docs/benchmarks.md): compare the "
      "ratios within this table. **× best peer** = this row ÷ the best row that is not wisp's own TLS "
      "(wisp, wisp-pool) in the same column; caddy-wisp counts as a peer (it is the proxy deployment "
      "wisp is meant to make unneeded)._\n")
    if meta.get("failures", "0") != "0":
        p(f"**{meta['failures']} run(s) failed**: see the FAIL rows and their notes.\n")

    app_ws = [w for w in workloads if w != "static"]
    if app_ws:
        p("## Summary\n")
        head = "| server |" + "".join(f" {SHORT[w]} | × best peer |" for w in app_ws)
        p(head)
        p("|---|" + "---:|---:|" * len(app_ws))
        for s in servers_of(app_ws):
            p(f"| {s} |" + "".join(" {} | {} |".format(*cell(w, s)) for w in app_ws))
        p("")
        p("⚠ = failed requests, socket errors or non-2xx responses in the run (see the details); "
          "no h2 = the server does not negotiate h2 over ALPN (curl --http2 got HTTP/1.1), so it has no HTTP/2 number.\n")
        p("Server CPU per request (µs, lower is better; other load on the machine disturbs it less than "
          "req/s). × best peer = this row ÷ the lowest peer:\n")
        p("| server |" + "".join(f" {SHORT[w].replace(' req/s', '')} CPU µs/req | × best peer |" for w in app_ws))
        p("|---|" + "---:|---:|" * len(app_ws))
        for s in servers_of(app_ws):
            p(f"| {s} |" + "".join(" {} | {} |".format(*cpu_cell(w, s)) for w in app_ws))
        p("")
    if "static" in workloads:
        p(f"## {TITLES['static']}\n")
        p("| server | MB/s | × best peer | req/s | server CPU s | CPU ms per MiB | non-2xx | errors |")
        p("|---|---:|---:|---:|---:|---:|---:|---:|")
        for s in servers_of(["static"]):
            r = by[("static", s)]
            v, x = cell("static", s, 1)
            if r["status"] != "ok":
                p(f"| {s} | {v} | – | – | – | – | – | {r['note']} |")
                continue
            mib = num(r["mbs"]) * num(r["wall"]) if num(r["mbs"]) and num(r["wall"]) else None
            per = f"{num(r['cpu']) * 1000 / mib:.2f}" if mib else "–"
            p(f"| {s} | {v} | {x} | {fmt(r['rps'])} | {fmt(r['cpu'], 1)} | {per} | {r['non2xx']} | {r['errors']} |")
        p("")

    p("## Details\n")
    for w in workloads:
        p(f"### {TITLES.get(w, w)}\n")
        p("| server | req/s | MB/s | p50 ms | p99 ms | mean ms | requests | non-2xx | failed / sock err | "
          "server CPU s | CPU % | CPU µs/req | TLS (client offers h2, http/1.1) | notes |")
        p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
        for s in servers_of([w]):
            r = by[(w, s)]
            if r["status"] != "ok":
                p(f"| {s} | **{r['status']}** |  |  |  |  |  |  |  |  |  |  | {r['tls']} | {r['note']} |")
                continue
            cpu, wall, req = num(r["cpu"]), num(r["wall"]), num(r["requests"])
            pct = f"{100 * cpu / wall:.0f}" if cpu is not None and wall else "–"
            us = f"{cpu * 1e6 / req:.0f}" if cpu is not None and req else "–"
            note = r["note"] + (f"; CPU s: {r['cpu_detail']}" if r["cpu_detail"] else "")
            p(f"| {s} | {fmt(r['rps'])} | {fmt(r['mbs'], 1)} | {r['p50'] or '–'} | {r['p99'] or '–'} | "
              f"{r['mean'] or '–'} | {fmt(r['requests'])} | {r['non2xx']} | {r['errors']} | {fmt(r['cpu'], 1)} | "
              f"{pct} | {us} | {r['tls']} | {note} |")
        p("")

    p("## Servers and their command lines\n")
    p("Run from the apps folder (`$APPS` = ../shared/bench/apps) with `PYTHONPATH=$APPS`, each in its own "
      "session (setsid), stopped with SIGTERM to its process group. `$TMP` is the run's scratch folder "
      "(certificate in `$TMP/tls`, the static file in `$TMP/www/static`); Apache and Caddy take their "
      "settings from `BT_*` environment variables named in scripts/bench-tls/apache.conf and "
      "Caddyfile.*. hello runs `hello:application` (flask: `flask_app:app`, static: hello plus the "
      "static folder).\n")
    for s in servers_of(workloads):
        c = cmds.get(s, {})
        p(f"- **{s}**: {WHAT.get(s, '')}")
        shown = set()
        for w in ["hello", "static", "flask", "h2"]:
            if w not in c:
                continue
            cmd, up = c[w]
            if w in ("flask", "h2") and shown:
                continue
            if cmd in shown:
                continue
            shown.add(cmd)
            label = "static" if w == "static" and s in WISP_ROWS else w
            p(f"  - {label}: `{cmd}`")
            if up:
                p(f"  - its upstream: `{up}`")
    p("")
    p("## Notes\n")
    p("- **no h2**: gunicorn and uWSGI have no HTTP/2; wisp shows no h2 until it offers h2 over ALPN "
      "(the script checks with `curl --http2` first, so a server that gains h2 gets a number without a change "
      "here). h2load -c16 -m16 keeps 256 requests in flight for 8 Python threads, so its mean latency is "
      "mostly queueing.")
    p("- **uwsgi** (`--https-socket`) has no keep-alive in uWSGI 2.0, like `--http-socket`: every request is "
      "a new TCP connection and TLS handshake, with `Connection: close` added as in ../shared/bench's uwsgi "
      "row (without it wrk counts each close as a read error). **uwsgi-router** is uWSGI's own HTTPS front "
      "end (`--https`, one router process, `--http-keepalive`), which passes requests to the 2 × 4 workers "
      "over the uwsgi protocol on a 127.0.0.1 socket it opens itself.")
    p("- **caddy-wisp** and **caddy-file** run Caddy with its defaults (GOMAXPROCS = cores, no access log) "
      "but for one setting: caddy-wisp keeps up to 256 idle connections to wisp (`keepalive_idle_conns_per_host`; "
      "the default 32 made 10-16 % of the requests open a new upstream connection under 64 client connections). "
      "HTTP/3, the admin endpoint and the HTTP→HTTPS redirect listener are off so that Caddy binds its one "
      "TCP port. Both Go processes (Caddy, wisp) spend more CPU per request when each is only partly busy, "
      "so caddy-wisp's CPU µs/req counts both hops at that cost.")
    p("- **mod_wsgi** / **apache-file**: scripts/bench-tls/apache.conf, the front end of "
      "../shared/bench/servers/apache_modwsgi.py plus mod_ssl (shmcb session cache) and mod_http2; "
      "started as root with www-data children.")
    p("- **static**: on 2 shared cores the client's own decryption (wrk, 2 threads) limits MB/s as much as "
      "the server does; CPU ms per MiB is the server's cost. wisp and wisp-pool serve the file from Go "
      "(`--static`), never from a Python thread.")
    p("- The TLS column is what `openssl s_client -alpn h2,http/1.1` got: Go servers (wisp, Caddy) choose "
      "AES-128-GCM, OpenSSL ones (gunicorn, uWSGI, Apache) AES-256-GCM, each by its own preference.")
    p("")
    p("## Versions\n")
    for k in ["wisp", "python", "pkgs", "uwsgi", "apache", "caddy", "openssl", "wrk", "h2load"]:
        if meta.get(k):
            p(f"- {k}: {meta[k]}")
    p("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
