#!/usr/bin/env bash
# Limits and signals on the charge path (issue "Limits and signals", Performance): the HTTP charge
# benchmark (bench/charges-http.sh) with rate limits on through Redis, a webhook endpoint
# subscribed to every event and a low-balance alert (SIGNALS=on), side by side with the same run
# with all of them off, alternated ROUNDS times in one run (the machine is shared and noisy).
# Prints each run's charges/s and p99, the on/off ratio of the medians, and the rate-limit check's
# own latency as the server measured it (roost_rate_limit_check_seconds).
# With FLOOR=on, each round also runs "sig": SIGNALS=on with the rate limits off (webhook and alert
# only), which separates the rate limits' cost from the rest of SIGNALS.
# Usage: [FLOOR=on] bench/signals-http.sh [DURATION_SECONDS] [DATABASE_URL] [ROUNDS]   (needs wrk and Redis)
set -euo pipefail
cd "$(dirname "$0")/.."
dur="${1:-15}"
url="${2:-}"
rounds="${3:-2}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
modes="off on"
[ "${FLOOR:-off}" = on ] && modes="off sig on"
for r in $(seq "$rounds"); do
    for mode in $modes; do
        echo "== round $r, signals $mode" >&2
        if [ "$mode" = sig ]; then
            SIGNALS=on RATE_LIMITS=off bash bench/charges-http.sh "$dur" "$url" >"$out/$r-$mode.txt"
        else
            SIGNALS=$mode bash bench/charges-http.sh "$dur" "$url" >"$out/$r-$mode.txt"
        fi
        grep -E "^POST /v1/charges|^books|^rate-limit" "$out/$r-$mode.txt" >&2
    done
done
python3 - "$out" "$rounds" $modes <<'PY'
import sys, re, statistics
out, rounds, modes = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rows = {m: [] for m in modes}
for r in range(1, rounds + 1):
    for mode in modes:
        text = open(f"{out}/{r}-{mode}.txt").read()
        f = re.search(r"^POST /v1/charges\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", text, re.M).groups()
        rows[mode].append((float(f[0]), float(f[1]), float(f[3])))
        rl = re.search(r"^rate-limit checks.*$", text, re.M)
        print(f"round {r} signals {mode:<3}  {float(f[0]):>8.0f} charges/s  p50 {float(f[1]):.2f} ms  p99 {float(f[3]):.2f} ms"
              + (f"   [{rl.group(0)}]" if rl else ""))
med = {m: (statistics.median(x[0] for x in v), statistics.median(x[2] for x in v)) for m, v in rows.items()}
print(f"median charges/s: off {med['off'][0]:.0f}, on {med['on'][0]:.0f}; on ÷ off = {med['on'][0] / med['off'][0]:.3f}")
print(f"median p99: off {med['off'][1]:.2f} ms, on {med['on'][1]:.2f} ms")
if "sig" in med:
    print(f"signals without rate limits (sig): median {med['sig'][0]:.0f} charges/s, p99 {med['sig'][1]:.2f} ms; "
          f"sig ÷ off = {med['sig'][0] / med['off'][0]:.3f}, on ÷ sig = {med['on'][0] / med['sig'][0]:.3f}")
PY
