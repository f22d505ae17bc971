-- POST /api/contact for `npm run bench`'s durable-write rows: a valid JSON message and no Idempotency-Key,
-- so every request stores a message of its own. The summary line comes from wrk-report.lua, next to this file.
local here = debug.getinfo(1, 'S').source:match('^@(.*/)') or './'
dofile(here .. 'wrk-report.lua')

wrk.method = 'POST'
wrk.headers['Content-Type'] = 'application/json'
wrk.body = '{"name":"Bench","email":"bench@example.com","message":"One durable write, acknowledged once on disk."}'
