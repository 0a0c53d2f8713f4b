#!/usr/bin/env bash
# End-to-end charges over HTTP with an API key: POST /v1/charges (each with its own
# Idempotency-Key) from 64 connections, then the server's memory once it has taken TOTAL charges.
# Usage: bench/charges-http.sh [DURATION_SECONDS] [DATABASE_URL] [TOTAL]   (needs wrk: apt-get install wrk)
# wrk runs on this machine too; WRK_THREADS (default 1) leaves the other core to the server.
set -euo pipefail
cd "$(dirname "$0")/.."
dur="${1:-15}"
db="${2:-sqlite://$(mktemp -d)/bench.db}"
total="${3:-0}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p roost
log=$(mktemp)
ROOST_LOG=warn target/release/roost serve --listen 127.0.0.1:0 --database-url "$db" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
base=$(grep -o 'http://[0-9.:]*' "$log" | head -1)
j() { python3 -c "import sys,json; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
email="bench-$RANDOM$RANDOM@example.com"
token=$(curl -sf -XPOST "$base/v1/signup" -d "{\"email\":\"$email\",\"password\":\"benchmark password\",\"name\":\"Bench\"}" | j 'd["token"]')
org=$(curl -sf -XPOST "$base/v1/orgs" -H "Authorization: Bearer $token" -d '{"name":"Bench","plan":"business"}')
org_id=$(echo "$org" | j 'd["org"]["id"]'); ws=$(echo "$org" | j 'd["workspace"]["id"]')
curl -sf -XPOST "$base/v1/orgs/$org_id/wallets/credits/topups" -H "Authorization: Bearer $token" \
     -H "Idempotency-Key: fund" -d '{"amount":1000000000000}' >/dev/null
export ROOST_KEY=$(curl -sf -XPOST "$base/v1/workspaces/$ws/keys" -H "Authorization: Bearer $token" -d '{"name":"bench"}' | j 'd["secret"]')
rss() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$pid/status"; }
echo "charges over HTTP, API key, 64 connections, ${dur} s, database ${db%%:*}; server RSS before: $(rss) MB"
wrk -t"${WRK_THREADS:-1}" -c64 -d"${dur}s" --latency -s bench/charge.lua "$base" | python3 -c '
import sys, re
text = sys.stdin.read()
def ms(v):
    n, u = re.match(r"([\d.]+)(\w+)", v).groups(); n = float(n)
    return n / 1000 if u == "us" else n * 1000 if u == "s" else n
p = {k: ms(v) for k, v in re.findall(r"^\s+(50|90|99)%\s+(\S+)", text, re.M)}
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
st = dict(re.findall(r"^status (\d+) (\d+)", text, re.M))
print("charges/s %.0f  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  statuses %s" % (rps, p["50"], p["90"], p["99"], st))'
charged() { curl -sf "$base/v1/orgs/$org_id/wallets" -H "Authorization: Bearer $token" | j 'd["items"][0]["charged"]'; }
echo "charged so far: $(charged); server RSS: $(rss) MB"
if [ "$total" -gt 0 ]; then
    while [ "$(charged)" -lt "$total" ]; do
        wrk -t"${WRK_THREADS:-1}" -c64 -d30s -s bench/charge.lua "$base" >/dev/null
        echo "charged so far: $(charged); server RSS: $(rss) MB"
    done
fi
