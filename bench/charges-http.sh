#!/usr/bin/env bash
# End-to-end charges over HTTP: POST /v1/charges from 64 connections, each with its own API key
# (64 keys over the 8 workspaces of one business org funded with 10^12 credits; one hot wallet),
# each request with its own Idempotency-Key; in the same run, GET /healthz of the same server with
# the same connections as the baseline. Prints charges/s, p50/p99, charges/s ÷ healthz req/s, the
# non-201 count (counted per status in Lua; must be 0), and checks that the wallet's balance moved
# by exactly the acknowledged charges (requests wrk left unanswered are replayed with their
# Idempotency-Key, so each one is known to have charged once). With TOTAL, keeps charging until
# the org has TOTAL charges and prints the server's memory along the way.
# Usage: [RATE_LIMITS=on] [SIGNALS=on] bench/charges-http.sh [DURATION_SECONDS] [DATABASE_URL] [TOTAL]   (needs wrk)
#   SIGNALS=on: rate limits on through Redis (127.0.0.1:6379) with a plan rpm and a key rpm too high to
#   refuse anything (so every request is checked and counted, and none is refused), a webhook endpoint
#   subscribed to every event (a receiver started here), and a low-balance alert on the wallet (the
#   charge path's watched-wallet scan runs). bench/signals-http.sh compares it with SIGNALS=off.
#   SIGNALS=on RATE_LIMITS=off: the same without the rate limits (the floor of the rest of SIGNALS).
#   DATABASE_URL: empty for a fresh SQLite file; a postgres://…/DB admin URL makes a fresh database
#   next to DB (needs psql) and drops it at the end.
# wrk runs one thread per connection (so a connection keeps its key), on the same 2 cores as the server.
set -euo pipefail
cd "$(dirname "$0")/.."
dur="${1:-15}"
url="${2:-}"
total="${3:-0}"
conns=64
workspaces=8
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p roost
bin="${CARGO_TARGET_DIR:-target}/release/roost"
tmp=$(mktemp -d)
pid=""
pgdb=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    [ -n "${receiver:-}" ] && kill "$receiver" 2>/dev/null || true
    [ -n "$pgdb" ] && psql -q "$url" -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
case "$url" in
    postgres://*|postgresql://*)
        pgdb="roost_http_bench_$$_$RANDOM"
        psql -q "$url" -c "CREATE DATABASE $pgdb" >/dev/null
        db="${url%/*}/$pgdb" ;;
    "") db="sqlite://$tmp/bench.db" ;;
    *) echo "DATABASE_URL: empty (SQLite) or postgres://…" >&2; exit 2 ;;
esac
# Rate limits off unless RATE_LIMITS=on: the business plan's 3000 requests a minute would refuse
# most of this traffic (429), and the books check needs every charge answered 201.
echo "rate_limits = ${RATE_LIMITS:-off}" | sed 's/= on$/= true/; s/= off$/= false/' >"$tmp/roost.toml"
plan=business
key_rpm=""
if [ "${SIGNALS:-off}" = on ]; then
    plan=bench
    key_rpm=',"rpm":60000000'
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || { echo "SIGNALS=on needs Redis at 127.0.0.1:6379" >&2; exit 1; }
    # A receiver that answers every delivery 204 and counts them.
    cat >"$tmp/receiver.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    n = 0
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        H.n += 1
        self.send_response(204); self.end_headers()
    def do_GET(self):
        b = str(H.n).encode(); self.send_response(200); self.send_header("Content-Length", str(len(b))); self.end_headers(); self.wfile.write(b)
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
    python3 "$tmp/receiver.py" >"$tmp/receiver.port" &
    receiver=$!
    for _ in $(seq 50); do [ -s "$tmp/receiver.port" ] && break; sleep 0.1; done
    signal_limits=true
    [ "${RATE_LIMITS:-on}" = off ] && signal_limits=false
    cat >"$tmp/roost.toml" <<TOML
rate_limits = $signal_limits
redis_url = "redis://127.0.0.1:6379"
redis_key_prefix = "roost-bench-$$-$RANDOM:"
webhooks_allow_private = true
[[plans]]
id = "free"
name = "Free"
paid = false
seats_included = 1
max_seats = 1
extra_seat_price = 0
max_workspaces = 1
monthly_credits = 100
rollover_cap = 0
rpm = 60
resource_quotas = {}
trial_days = 0
[[plans]]
id = "bench"
name = "Bench"
paid = true
seats_included = 10
max_seats = 10
extra_seat_price = 0
max_workspaces = 100
monthly_credits = 0
rollover_cap = 0
rpm = 60000000
resource_quotas = {}
trial_days = 0
TOML
fi
ROOST_LOG=warn "$bin" serve --listen 127.0.0.1:0 --database-url "$db" --config "$tmp/roost.toml" >"$tmp/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$tmp/server.log" && break; sleep 0.1; done
base=$(grep -o 'http://[0-9.:]*' "$tmp/server.log" | head -1)
j() { python3 -c "import sys,json; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
email="bench-$RANDOM$RANDOM@example.com"
token=$(curl -sf -XPOST "$base/v1/signup" -d "{\"email\":\"$email\",\"password\":\"benchmark password\",\"name\":\"Bench\"}" | j 'd["token"]')
auth=(-H "Authorization: Bearer $token")
org=$(curl -sf -XPOST "$base/v1/orgs" "${auth[@]}" -d "{\"name\":\"Bench\",\"plan\":\"$plan\"}")
org_id=$(echo "$org" | j 'd["org"]["id"]')
wss=("$(echo "$org" | j 'd["workspace"]["id"]')")
for i in $(seq 2 "$workspaces"); do
    wss+=("$(curl -sf -XPOST "$base/v1/orgs/$org_id/workspaces" "${auth[@]}" -d "{\"name\":\"ws $i\"}" | j 'd["id"]')")
done
curl -sf -XPOST "$base/v1/orgs/$org_id/wallets/credits/topups" "${auth[@]}" \
     -H "Idempotency-Key: fund" -d '{"amount":1000000000000}' >/dev/null
if [ "${SIGNALS:-off}" = on ]; then
    curl -sf -XPOST "$base/v1/orgs/$org_id/webhooks" "${auth[@]}" \
         -d "{\"url\":\"http://127.0.0.1:$(cat "$tmp/receiver.port")/hook\",\"events\":[\"*\"]}" >/dev/null
    curl -sf -XPUT "$base/v1/orgs/$org_id/wallets/credits/alerts" "${auth[@]}" -d '{"low_balance":1}' >/dev/null
fi
for i in $(seq 0 $((conns - 1))); do
    ws=${wss[$((i % workspaces))]}
    curl -sf -XPOST "$base/v1/workspaces/$ws/keys" "${auth[@]}" -d "{\"name\":\"bench $i\"$key_rpm}" | j 'd["secret"]'
done >"$tmp/keys"
export ROOST_KEYS="$tmp/keys"
balance() { curl -sf "$base/v1/orgs/$org_id/wallets" "${auth[@]}" | j 'd["items"][0]["balance"]'; }
charged() { curl -sf "$base/v1/orgs/$org_id/wallets" "${auth[@]}" | j 'd["items"][0]["charged"]'; }
rss() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$pid/status"; }
parse='
import sys, re
text = sys.stdin.read()
def ms(v):
    n, u = re.match(r"([\d.]+)(\w+)", v).groups(); n = float(n)
    return n / 1000 if u == "us" else n * 1000 if u == "s" else n
p = {k: ms(v) for k, v in re.findall(r"^\s+(50|90|99)%\s+(\S+)", text, re.M)}
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
n = re.search(r"(\d+) requests in", text).group(1)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
errs = re.search(r"Socket errors: (.*)", text)
print(rps, p["50"], p["90"], p["99"], n, non2xx.group(1) if non2xx else 0, (errs.group(1) if errs else "none").replace(" ", ""))'
echo "HTTP, $conns connections (one wrk thread each), $conns API keys over $workspaces workspaces, one wallet, ${dur} s each, database ${db%%:*}; server RSS before: $(rss) MB"
# The baseline: the same server's health check (HTTP stack and one database round trip).
read -r h_rps h_p50 h_p90 h_p99 h_n h_non2xx h_errs < <(wrk -t"$conns" -c"$conns" -d"${dur}s" --latency "$base/healthz" | python3 -c "$parse")
before=$(balance)
wrk -t"$conns" -c"$conns" -d"${dur}s" --latency -s bench/charge.lua "$base" >"$tmp/wrk.out"
read -r c_rps c_p50 c_p90 c_p99 c_n _ c_errs < <(python3 -c "$parse" <"$tmp/wrk.out")
ok=$(awk '$1 == "status" && $2 == 201 {s += $3} END {print s + 0}' "$tmp/wrk.out")
statuses=$(awk '$1 == "status" {n[$2] += $3} END {for (k in n) printf "%s %d  ", k, n[k]}' "$tmp/wrk.out")
non201=$(awk '$1 == "status" && $2 != 201 {s += $3} END {print s + 0}' "$tmp/wrk.out")
# Requests wrk sent but did not see answered: replay each (same key, same body); a 201 either
# makes the charge or returns the one already made.
replayed=0
while read -r _ secret idem; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$base/v1/charges" -H "Authorization: Bearer $secret" \
           -H "Idempotency-Key: $idem" -H "Content-Type: application/json" -d '{"amount":1,"action":"bench.charge"}')
    [ "$code" = 201 ] && replayed=$((replayed + 1)) || non201=$((non201 + 1))
done < <(grep '^unanswered ' "$tmp/wrk.out" || true)
after=$(balance)
moved=$((before - after))
acked=$((ok + replayed))
python3 - "$h_rps" "$h_p50" "$h_p90" "$h_p99" "$h_non2xx" "$c_rps" "$c_p50" "$c_p90" "$c_p99" "$non201" "$moved" "$acked" "$replayed" "$h_errs" "$c_errs" <<'PY'
import sys
a = sys.argv[1:]
h_rps, h50, h90, h99 = map(float, a[0:4])
c_rps, c50, c90, c99 = map(float, a[5:9])
print(f"{'run':<22}{'req/s':>10}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'non-2xx/201':>13}")
print(f"{'GET /healthz':<22}{h_rps:>10.0f}{h50:>9.2f}{h90:>9.2f}{h99:>9.2f}{a[4]:>13}   socket errors: {a[13]}")
print(f"{'POST /v1/charges':<22}{c_rps:>10.0f}{c50:>9.2f}{c90:>9.2f}{c99:>9.2f}{a[9]:>13}   socket errors: {a[14]}")
print(f"charges/s ÷ healthz req/s: {c_rps / h_rps:.2f}")
print(f"balance moved by {a[10]}; acknowledged charges (201) {a[11]} ({a[12]} of them unanswered by wrk and replayed)")
PY
echo "charge statuses: $statuses"
[ "$moved" -eq "$acked" ] || { echo "FAIL: the balance moved by $moved, but $acked charges were acknowledged" >&2; exit 1; }
[ "$non201" -eq 0 ] || { echo "FAIL: $non201 charges were not answered 201" >&2; exit 1; }
echo "books: OK; charged so far: $(charged); server RSS: $(rss) MB"
if [ "${SIGNALS:-off}" = on ]; then
    checks=$(curl -sf "$base/metrics" | python3 -c '
import sys, re
b = {}
for line in sys.stdin:
    m = re.match(r"roost_rate_limit_check_seconds_bucket\{.*le=\"([^\"]+)\".*\} (\S+)", line)
    if m: b[float("inf") if m.group(1) == "+Inf" else float(m.group(1))] = float(m.group(2))
total = b.get(float("inf"), 0)
if not total:
    print("0 checks (rate limits off)"); sys.exit()
def q(p):
    for le in sorted(b):
        if b[le] >= p * total: return le * 1000
print(f"{int(total)} checks, p50 <= {q(0.5):.2f} ms, p99 <= {q(0.99):.2f} ms (histogram bucket bounds)", end="")')
    leases=$(curl -sf "$base/metrics" | awk '$1 == "roost_rate_limit_leases_total" {print $2}')
    checks="$checks, ${leases:-0} leases asked of Redis"
    echo "rate-limit checks (Redis): $checks; webhook deliveries received: $(curl -sf "http://127.0.0.1:$(cat "$tmp/receiver.port")/")"
fi
if [ "$total" -gt 0 ]; then
    while [ "$(charged)" -lt "$total" ]; do
        wrk -t"$conns" -c"$conns" -d30s -s bench/charge.lua "$base" >/dev/null
        echo "charged so far: $(charged); server RSS: $(rss) MB"
    done
fi
