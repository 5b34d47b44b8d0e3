-- wrk script of scripts/bench-tls.sh: prints one line that the script parses:
-- WRK requests duration_us bytes connect read write status timeout p50_us p99_us mean_us
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %d %d %d %d %d %d %d %d %d %d %.1f\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
