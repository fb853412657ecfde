#!/usr/bin/env bash
# Load run: wrk (Debian package) on loopback at concurrency 1, 8 and 64 against
#   (a) the local mock OpenAI provider directly (`support-service mock-openai`), and
#   (b) support-service's OpenAI-compatible route over that mock (full stack: trace, guards,
#       budget, retry, breaker, timeout, the OpenAI provider client, the serving route).
# Prints a Markdown table: p50/p99 latency, requests per second, and the latency the service
# adds (b − a). Release build by default; results go in docs/benchmarks.md.
#
#   scripts/bench-service.sh [DURATION_SECONDS]   (default 10)
#   BENCH_PROFILE=debug scripts/bench-service.sh  (the debug binary `cargo build -p support-service` made)
#   BENCH_BIN=path/to/support-service BENCH_PROFILE=debug scripts/bench-service.sh  (no build)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
PROFILE=${BENCH_PROFILE:-release}
if [ -n "${BENCH_BIN:-}" ]; then
    BIN=$BENCH_BIN   # a binary built earlier (no build step)
elif [ "$PROFILE" = release ]; then
    cargo build --release -q -p support-service
    BIN=target/release/support-service
else
    cargo build -q -p support-service
    BIN=target/debug/support-service
fi
WORK=$(mktemp -d)
cleanup() { kill "$MOCK_PID" "$SVC_PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

port_of() { # log file -> port from the `listening` line
    for _ in $(seq 1 100); do
        local addr
        addr=$(grep -o '"addr":"[^"]*"' "$1" 2>/dev/null | head -1 | cut -d'"' -f4)
        [ -n "$addr" ] && { echo "${addr##*:}"; return 0; }
        sleep 0.1
    done
    cat "$1" >&2; return 1
}

SUPPORT_LOG=info "$BIN" mock-openai --listen 127.0.0.1:0 >"$WORK/mock.log" 2>&1 &
MOCK_PID=$!
MOCK_PORT=$(port_of "$WORK/mock.log")

SUPPORT__SERVER__LISTEN=127.0.0.1:0 \
SUPPORT__MODEL__VERSIONS__V1__PROVIDER=openai_compatible \
SUPPORT__MODEL__VERSIONS__V1__MODEL=mock \
SUPPORT__MODEL__VERSIONS__V1__BASE_URL="http://127.0.0.1:$MOCK_PORT/v1" \
SUPPORT__TENANTS__REQUESTS_PER_MINUTE=0 \
SUPPORT__TENANTS__BUDGET_USD=1000000 \
SUPPORT__SERVER__PROBE_SECONDS=3600 \
SUPPORT_LOG=error,support_service=info,support_service::access=error \
    "$BIN" >"$WORK/svc.log" 2>&1 &
SVC_PID=$!
SVC_PORT=$(port_of "$WORK/svc.log")

cat >"$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"support-v1","messages":[{"role":"user","content":"What is the refund window?"}],"max_tokens":64}'
LUA

run() { # url conns -> "p50_ms p99_ms rps"
    local threads=$(( $2 < 2 ? 1 : 2 ))
    wrk -t"$threads" -c"$2" -d"${DURATION}s" --latency -s "$WORK/post.lua" "$1" >"$WORK/wrk.out"
    grep -q 'Non-2xx' "$WORK/wrk.out" && { cat "$WORK/wrk.out" >&2; echo "non-2xx answers" >&2; return 1; }
    awk '
        function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
        $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) } $1 == "Requests/sec:" { rps = $2 }
        END { printf "%.3f %.3f %.0f\n", p50, p99, rps }' "$WORK/wrk.out"
}

# Warm both (connection pools, first-call paths).
wrk -t1 -c1 -d2s -s "$WORK/post.lua" "http://127.0.0.1:$MOCK_PORT/v1/chat/completions" >/dev/null
wrk -t1 -c1 -d2s -s "$WORK/post.lua" "http://127.0.0.1:$SVC_PORT/v1/chat/completions" >/dev/null

echo "$PROFILE build; wrk ${DURATION}s per cell, loopback, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo
echo "| concurrency | mock p50 ms | mock p99 ms | mock rps | service p50 ms | service p99 ms | service rps | added p50 ms | added p99 ms |"
echo "|---|---|---|---|---|---|---|---|---|"
for c in 1 8 64; do
    read -r mp50 mp99 mrps < <(run "http://127.0.0.1:$MOCK_PORT/v1/chat/completions" "$c")
    read -r sp50 sp99 srps < <(run "http://127.0.0.1:$SVC_PORT/v1/chat/completions" "$c")
    awk -v c="$c" -v a="$mp50" -v b="$mp99" -v r="$mrps" -v d="$sp50" -v e="$sp99" -v f="$srps" \
        'BEGIN { printf "| %d | %.2f | %.2f | %d | %.2f | %.2f | %d | %.2f | %.2f |\n", c, a, b, r, d, e, f, d-a, e-b }'
done
echo
echo "load average at end $(cut -d' ' -f1-3 /proc/loadavg)"
