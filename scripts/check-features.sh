#!/usr/bin/env bash
# Checks that llmkit-providers compiles warning-free (clippy, -D warnings, all targets) with no
# provider and with each provider feature alone (and with the conformance suite alone), so no
# provider silently depends on another's code.
# Usage: scripts/check-features.sh   (CI runs it; set CARGO_TARGET_DIR to share a build cache)
set -euo pipefail
cd "$(dirname "$0")/.."
features=("" openai azure anthropic gemini ollama conformance "openai,conformance")
for f in "${features[@]}"; do
  if [ -z "$f" ]; then
    echo "==> llmkit-providers --no-default-features"
    cargo clippy -p llmkit-providers --no-default-features --all-targets -- -D warnings
  else
    echo "==> llmkit-providers --no-default-features --features $f"
    cargo clippy -p llmkit-providers --no-default-features --features "$f" --all-targets -- -D warnings
  fi
done
echo "all feature combinations compile"
