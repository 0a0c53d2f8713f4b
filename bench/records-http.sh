#!/usr/bin/env bash
# Workspace records over HTTP with API keys, 64 connections (one wrk thread and one key each; 64
# keys over the 8 workspaces of one business org), all against the same release server in one run:
#   GET /healthz                                the baseline
#   GET  /v1/workspaces/{ws}/state/{key}        reads of 100 documents per workspace
#   PUT  /v1/workspaces/{ws}/state/{key}        writes (each connection its own key)
#   POST /v1/charges                            the charge path (bench/charge.lua), for comparison
#   POST /v1/workspaces/{ws}/history            appends, each with its own Idempotency-Key
# and prints reads ÷ healthz and appends ÷ charges. Then (unless EXPORT=0) it appends EXPORT
# entries (default 100,000) to one workspace and streams its export twice — at full speed, and to
# a client reading at 1 MB/s — sampling the server's resident memory every 20 ms throughout.
# Usage: [EXPORT=100000] bench/records-http.sh [DURATION_SECONDS] [DATABASE_URL]   (needs wrk)
#   DATABASE_URL: empty for a fresh SQLite file; a postgres://…/DB admin URL makes a fresh database
#   next to DB (needs psql) and drops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
dur="${1:-10}"
url="${2:-}"
export_n="${EXPORT:-100000}"
conns=64
workspaces=8
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
# NO_BUILD=1: use the release binary as it is (e.g. built while nothing may change).
[ "${NO_BUILD:-}" = 1 ] || cargo build --release -q -p roost
bin="${CARGO_TARGET_DIR:-target}/release/roost"
tmp=$(mktemp -d)
pid=""
pgdb=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    [ -n "$pgdb" ] && psql -q "$url" -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
case "$url" in
    postgres://*|postgresql://*)
        pgdb="roost_records_bench_$$_$RANDOM"
        psql -q "$url" -c "CREATE DATABASE $pgdb" >/dev/null
        db="${url%/*}/$pgdb" ;;
    "") db="sqlite://$tmp/bench.db" ;;
    *) echo "DATABASE_URL: empty (SQLite) or postgres://…" >&2; exit 2 ;;
esac
# Rate limits off: the business plan's 3,000 requests a minute would refuse most of this traffic.
echo "rate_limits = false" >"$tmp/roost.toml"
ROOST_LOG=warn "$bin" serve --listen 127.0.0.1:0 --database-url "$db" --config "$tmp/roost.toml" >"$tmp/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$tmp/server.log" && break; sleep 0.1; done
base=$(grep -o 'http://[0-9.:]*' "$tmp/server.log" | head -1)
j() { python3 -c "import sys,json; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
email="bench-$RANDOM$RANDOM@example.com"
token=$(curl -sf -XPOST "$base/v1/signup" -d "{\"email\":\"$email\",\"password\":\"benchmark password\",\"name\":\"Bench\"}" | j 'd["token"]')
auth=(-H "Authorization: Bearer $token")
org=$(curl -sf -XPOST "$base/v1/orgs" "${auth[@]}" -d '{"name":"Bench","plan":"business"}')
org_id=$(echo "$org" | j 'd["org"]["id"]')
wss=("$(echo "$org" | j 'd["workspace"]["id"]')")
for i in $(seq 2 "$workspaces"); do
    wss+=("$(curl -sf -XPOST "$base/v1/orgs/$org_id/workspaces" "${auth[@]}" -d "{\"name\":\"ws $i\"}" | j 'd["id"]')")
done
curl -sf -XPOST "$base/v1/orgs/$org_id/wallets/credits/topups" "${auth[@]}" \
     -H "Idempotency-Key: fund" -d '{"amount":1000000000000}' >/dev/null
for i in $(seq 0 $((conns - 1))); do
    ws=${wss[$((i % workspaces))]}
    echo "$(curl -sf -XPOST "$base/v1/workspaces/$ws/keys" "${auth[@]}" -d "{\"name\":\"bench $i\"}" | j 'd["secret"]') $ws"
done >"$tmp/keys"
cut -d' ' -f1 "$tmp/keys" >"$tmp/secrets"
# 100 documents of about 150 bytes in each workspace, for the reads.
seeders=()
for ws in "${wss[@]}"; do
    (
        for n in $(seq 0 99); do
            curl -sf -XPUT "$base/v1/workspaces/$ws/state/bench/doc/$n" "${auth[@]}" -H "Content-Type: application/json" \
                 -d "{\"conversation\":\"c-$n\",\"title\":\"a conversation about the benchmark\",\"turns\":$n,\"model\":\"large\",\"settings\":{\"temperature\":0.3,\"max_tokens\":1024}}" >/dev/null
        done
    ) &
    seeders+=($!)
done
wait "${seeders[@]}"
rss() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$pid/status"; }
parse='
import sys, re
text = sys.stdin.read()
def ms(v):
    n, u = re.match(r"([\d.]+)(\w+)", v).groups(); n = float(n)
    return n / 1000 if u == "us" else n * 1000 if u == "s" else n
p = {k: ms(v) for k, v in re.findall(r"^\s+(50|90|99)%\s+(\S+)", text, re.M)}
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
errs = re.search(r"Socket errors: (.*)", text)
print(rps, p["50"], p["90"], p["99"], (errs.group(1) if errs else "none").replace(" ", ""))'
run() { # NAME EXPECTED-STATUS wrk-args… → one table row
    local name=$1 want=$2
    shift 2
    wrk -t"$conns" -c"$conns" -d"${dur}s" --latency "$@" >"$tmp/wrk.out"
    read -r rps p50 p90 p99 errs < <(python3 -c "$parse" <"$tmp/wrk.out")
    local bad
    bad=$(awk -v w="$want" '$1 == "status" && $2 != w {s += $3} END {print s + 0}' "$tmp/wrk.out")
    if [ "$want" = any ]; then
        bad=$(grep -o "Non-2xx or 3xx responses: [0-9]*" "$tmp/wrk.out" | grep -o "[0-9]*$" || echo 0)
    fi
    printf "%-40s%10.0f%9.2f%9.2f%9.2f%10s   socket errors: %s\n" "$name" "$rps" "$p50" "$p90" "$p99" "$bad" "$errs"
    echo "$rps" >"$tmp/rps.$name"
}
echo "HTTP, $conns connections (one wrk thread each), $conns API keys over $workspaces workspaces, ${dur} s each, database ${db%%:*}; server RSS before: $(rss) MB"
printf "%-40s%10s%9s%9s%9s%10s\n" run "req/s" "p50 ms" "p90 ms" "p99 ms" "other"
run healthz any "$base/healthz"
export ROOST_KEYS="$tmp/keys" ROOST_DOCS=100
ROOST_MODE=read run state-read 200 -s bench/records.lua "$base"
ROOST_MODE=write run state-write 200 -s bench/records.lua "$base"
ROOST_KEYS="$tmp/secrets" run charges 201 -s bench/charge.lua "$base"
ROOST_MODE=append run history-append 201 -s bench/records.lua "$base"
python3 - "$tmp" <<'PY'
import sys
r = lambda n: float(open(f"{sys.argv[1]}/rps.{n}").read())
print(f"state reads ÷ healthz: {r('state-read') / r('healthz'):.2f}   (target ≥ 0.5)")
print(f"history appends ÷ charges: {r('history-append') / r('charges'):.2f}   (target ≥ 1.0)")
print(f"state writes ÷ healthz: {r('state-write') / r('healthz'):.2f}")
PY
echo "server RSS after the runs: $(rss) MB"
[ "$export_n" -gt 0 ] || exit 0

# The export: EXPORT entries in one workspace, appended through the API by 64 connections.
ews=$(curl -sf -XPOST "$base/v1/orgs/$org_id/workspaces" "${auth[@]}" -d '{"name":"export"}' | j 'd["id"]')
for i in $(seq 1 $conns); do
    echo "$(curl -sf -XPOST "$base/v1/workspaces/$ews/keys" "${auth[@]}" -d "{\"name\":\"export $i\"}" | j 'd["secret"]') $ews"
done >"$tmp/export-keys"
put_in=0
while [ "$put_in" -lt "$export_n" ]; do
    ROOST_KEYS="$tmp/export-keys" ROOST_MODE=append wrk -t"$conns" -c"$conns" -d5s -s bench/records.lua "$base" >"$tmp/wrk.out"
    put_in=$((put_in + $(awk '$1 == "status" && $2 == 201 {s += $3} END {print s + 0}' "$tmp/wrk.out")))
done
sample() { # samples VmRSS every 20 ms into FILE until the flag file goes
    while [ -e "$tmp/sampling" ]; do rss >>"$1"; echo >>"$1"; sleep 0.02; done
}
measure() { # NAME curl-args…
    local name=$1
    shift
    sleep 1
    local before
    before=$(rss)
    touch "$tmp/sampling"
    sample "$tmp/rss.$name" &
    local sampler=$! start end
    start=$(date +%s.%N)
    curl -sf "${auth[@]}" "$@" "$base/v1/workspaces/$ews/export" >"$tmp/export.jsonl"
    end=$(date +%s.%N)
    rm -f "$tmp/sampling"
    wait "$sampler"
    local lines bytes peak
    lines=$(wc -l <"$tmp/export.jsonl")
    bytes=$(stat -c %s "$tmp/export.jsonl")
    peak=$(sort -n "$tmp/rss.$name" | tail -1)
    python3 -c "import sys; a=sys.argv; print(f'{a[1]:<26} {a[2]:>8} lines {int(a[3])/1e6:>7.1f} MB in {float(a[5])-float(a[4]):>6.1f} s; server RSS before {a[6]} MB, peak during {a[7]} MB')" \
        "$name" "$lines" "$bytes" "$start" "$end" "$before" "$peak"
}
echo "export of one workspace with $put_in history entries (plus its header line):"
measure full-speed
measure client-at-1MBps --limit-rate 1M
echo "server RSS at the end: $(rss) MB"
