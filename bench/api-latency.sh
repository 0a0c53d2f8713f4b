#!/usr/bin/env bash
# Latency of API-key-authenticated GET /v1/me under 64 concurrent connections on loopback, side by
# side with two baselines measured in the same run:
#   plans  GET /v1/plans       no auth, no database: the HTTP stack alone
#   key    GET /v1/me (rsk_)   API key, looked up in memory after first use
#   user   GET /v1/me (rsu_)   user token: a database lookup per request
# Usage: bench/api-latency.sh [DURATION_SECONDS] [DATABASE_URL]   (needs wrk: apt-get install wrk)
# wrk runs on this machine too; WRK_THREADS (default 1) leaves the other core to the server.
set -euo pipefail
cd "$(dirname "$0")/.."
dur="${1:-10}"
db="${2:-sqlite://$(mktemp -d)/bench.db}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p roost
log=$(mktemp)
ROOST_LOG=warn target/release/roost serve --listen 127.0.0.1:0 --database-url "$db" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
base=$(grep -o 'http://[0-9.:]*' "$log" | head -1)
email="bench-$RANDOM$RANDOM@example.com"
signup=$(curl -sf -XPOST "$base/v1/signup" -d "{\"email\":\"$email\",\"password\":\"benchmark password\",\"name\":\"Bench\"}")
token=$(echo "$signup" | python3 -c 'import sys,json; print(json.load(sys.stdin)["token"])')
ws=$(echo "$signup" | python3 -c 'import sys,json; print(json.load(sys.stdin)["personal"]["workspace_id"])')
key=$(curl -sf -XPOST "$base/v1/workspaces/$ws/keys" -H "Authorization: Bearer $token" -d '{"name":"bench"}' \
      | python3 -c 'import sys,json; print(json.load(sys.stdin)["secret"])')
run() { # name, path, token
    local extra=()
    [ -n "${3:-}" ] && extra=(-H "Authorization: Bearer $3")
    wrk -t"${WRK_THREADS:-1}" -c64 -d"${dur}s" --latency "${extra[@]}" "$base$2" | python3 -c '
import sys, re
name = sys.argv[1]; text = sys.stdin.read()
def ms(v):
    n, u = re.match(r"([\d.]+)(\w+)", v).groups(); n = float(n)
    return n / 1000 if u == "us" else n * 1000 if u == "s" else n
p = {k: ms(v) for k, v in re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M)}
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
errs = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(name, round(rps), "%.3f" % p["50"], "%.3f" % p["99"], errs.group(1) if errs else 0)' "$1"
}
{
    run plans /v1/plans
    run key /v1/me "$key"
    run user /v1/me "$token"
} >"$log.results"
python3 - "$log.results" "$db" "$dur" <<'PY'
import sys
rows = {r[0]: r[1:] for r in (l.split() for l in open(sys.argv[1]))}
print(f"GET latency, 64 connections, {sys.argv[3]} s each, database {sys.argv[2].split(':')[0]}")
print(f"{'endpoint':<26}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>9}{'p99 / plans':>13}")
label = {"plans": "GET /v1/plans (baseline)", "key": "GET /v1/me, API key", "user": "GET /v1/me, user token"}
base99 = float(rows["plans"][2])
for k in ("plans", "key", "user"):
    rps, p50, p99, errs = rows[k]
    print(f"{label[k]:<26}{rps:>10}{p50:>10}{p99:>10}{errs:>9}{float(p99)/base99:>12.2f}x")
PY
