-- wrk script for `npm run bench`: with BENCH_POST=1, a contact message (no Idempotency-Key, so each request
-- stores one); always, wrk's summary as one JSON line for scripts/bench/measure.ts (latencies in µs).
if os.getenv('BENCH_POST') then
  wrk.method = 'POST'
  wrk.headers['Content-Type'] = 'application/json'
  wrk.body = '{"name":"Bench","email":"bench@example.com","message":"One durable write, acknowledged once on disk."}'
end
done = function(summary, latency)
  local e = summary.errors
  io.write(string.format('BENCH_JSON {"requests":%.0f,"duration_us":%.0f,"p50_us":%.0f,"p99_us":%.0f,' ..
    '"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f}\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout))
end
