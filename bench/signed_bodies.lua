-- wrk script for bench/ingest.py: every request is a pre-generated, pre-signed body.
-- Usage: wrk ... -s bench/signed_bodies.lua URL -- <file prefix>
-- Thread N reads "<prefix>.N": one request per line, "<X-Kanal-Signature value>\t<JSON body>".
-- Each thread cycles through its own file; "wraps" counts how often a thread ran out of fresh bodies
-- (then bodies repeat: Kanal answers them as duplicates). done() prints one JSON line for ingest.py.

local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end

function init(args)
  local path = wrk.path
  reqs = {}
  sent = 0
  wraps = 0
  local f = assert(io.open(args[1] .. "." .. tid, "r"))
  for line in f:lines() do
    local tab = string.find(line, "\t", 1, true)
    local sig = string.sub(line, 1, tab - 1)
    local body = string.sub(line, tab + 1)
    reqs[#reqs + 1] = wrk.format("POST", path, {
      ["Content-Type"] = "application/json",
      ["X-Kanal-Signature"] = sig,
    }, body)
  end
  f:close()
  count = #reqs
  pos = 0
end

function request()
  pos = pos + 1
  if pos > count then
    pos = 1
    wraps = wraps + 1
  end
  sent = sent + 1
  return reqs[pos]
end

function done(summary, latency, requests)
  local total_sent, total_wraps = 0, 0
  local per_thread = {}
  for _, t in ipairs(threads) do
    total_sent = total_sent + t:get("sent")
    total_wraps = total_wraps + t:get("wraps")
    table.insert(per_thread, string.format('{"tid":%d,"sent":%d,"bodies":%d}', t:get("tid"), t:get("sent"), t:get("count")))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f},' ..
    '"sent":%d,"wraps":%d,"threads":[%s]}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean,
    total_sent, total_wraps, table.concat(per_thread, ",")))
end
