#!/usr/bin/env bash
# Checks that llmkit-providers compiles warning-free (clippy, -D warnings, all targets) with no
# provider and with each provider feature alone, so no provider silently depends on another's
# code; then the conformance kit (llmkit-testkit) on its own, which must build without
# llmkit-providers.
# Usage: scripts/check-features.sh   (CI runs it; set CARGO_TARGET_DIR to share a build cache)
set -euo pipefail
cd "$(dirname "$0")/.."
features=("" openai azure anthropic gemini ollama)
for f in "${features[@]}"; do
  if [ -z "$f" ]; then
    echo "==> llmkit-providers --no-default-features"
    cargo clippy -p llmkit-providers --no-default-features --all-targets -- -D warnings
  else
    echo "==> llmkit-providers --no-default-features --features $f"
    cargo clippy -p llmkit-providers --no-default-features --features "$f" --all-targets -- -D warnings
  fi
done
echo "==> llmkit-testkit"
cargo clippy -p llmkit-testkit --all-targets -- -D warnings
if cargo tree -p llmkit-testkit -e normal | grep -q "llmkit-providers"; then
  echo "llmkit-testkit must not depend on llmkit-providers" >&2
  exit 1
fi
echo "all feature combinations compile"
