#!/usr/bin/env bash
# A documented check: the demo's banner curl commands work as printed. It starts the demo (in
# session mode, then with --stateless) on a free port, takes the `export TOKEN=` line and the
# commands under "call get_me with curl" from the banner, runs them in bash exactly as printed,
# and exits non-zero unless the last one answers get_me for the demo user.
#
#   docs/checks/demo-curl.sh
#
# Needs bash, curl and awk, as the banner's commands do.
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build -q -p mcp-oauth-server --example demo
target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c "import json,sys; print(json.load(sys.stdin)['target_directory'])")
demo="$target_dir/debug/examples/demo"

work=$(mktemp -d)
pid=""
cleanup() {
  [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

run() { # mode-flags...
  : >"$work/banner"
  RUST_LOG=warn "$demo" --port 0 "$@" >"$work/banner" 2>"$work/log" &
  pid=$!
  for _ in $(seq 300); do
    grep -q grant_type=client_credentials "$work/banner" && break
    sleep 0.1
  done
  grep -q grant_type=client_credentials "$work/banner" || { cat "$work/log" >&2; exit 1; }
  # The token line, then the indented lines under the curl header, up to the next header.
  {
    echo 'set -euo pipefail'
    grep '^export TOKEN=' "$work/banner"
    awk '/^call get_me with curl/ { on = 1 } /^MCP Inspector/ { on = 0 } on && /^  /' "$work/banner"
  } >"$work/commands.sh"
  echo "== demo $*: running the printed commands" >&2
  sed 's/TOKEN=.*/TOKEN=…/' "$work/commands.sh" >&2
  answer=$(bash "$work/commands.sh")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=""
  echo "$answer" | grep -q '"structuredContent":{"user_id":"demo-user"' ||
    { echo "no get_me answer for demo-user: $answer" >&2; exit 1; }
  echo "== ok: get_me answered for demo-user" >&2
}

run
run --stateless
