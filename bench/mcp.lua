-- wrk script for bench/load.sh: MCP JSON-RPC requests over Streamable HTTP.
--
-- Every request gets its own JSON-RPC id (rmcp ends a session whose client reuses an id that
-- is still in flight). Environment:
--   TOKEN        the bearer token, or
--   TOKENS_FILE  a file of tokens, one per line, used round-robin (distinct-token load);
--   SESSION      an Mcp-Session-Id (session mode), unset in stateless mode;
--   METHOD       tools/call (get_me, the default) or tools/list.
-- Prints one RESULT line: requests/s and latency percentiles in microseconds.

local token = os.getenv("TOKEN")
local tokens_file = os.getenv("TOKENS_FILE")
local session = os.getenv("SESSION")
local method = os.getenv("METHOD") or "tools/call"

local threads = {}
local next_thread = 0

function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

local tokens
local counter = 0

function init(args)
  if tokens_file then
    tokens = {}
    for line in io.lines(tokens_file) do
      if #line > 0 then tokens[#tokens + 1] = line end
    end
  end
end

function request()
  counter = counter + 1
  local id = thread_id * 1000000000 + counter
  local body
  if method == "tools/list" then
    body = string.format('{"jsonrpc":"2.0","id":%d,"method":"tools/list"}', id)
  else
    body = string.format(
      '{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"get_me","arguments":{}}}', id)
  end
  local bearer = token
  if tokens then bearer = tokens[(counter % #tokens) + 1] end
  local headers = {
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
    ["MCP-Protocol-Version"] = "2025-06-18",
    ["Authorization"] = "Bearer " .. bearer,
  }
  if session and session ~= "" then headers["Mcp-Session-Id"] = session end
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1000000
  io.write(string.format(
    "RESULT rps=%.0f p50=%d p99=%d p999=%d requests=%d non2xx=%d socket_errors=%d\n",
    summary.requests / seconds,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
