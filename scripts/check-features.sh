#!/usr/bin/env bash
# Checks that llmkit-providers compiles warning-free (clippy, -D warnings, all targets) with no
# provider and with each provider feature alone, so no provider silently depends on another's
# code; then the conformance kit (llmkit-testkit) on its own, which must build without
# llmkit-providers; and that llmkit-core's contract stays small.
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

# llmkit-core's contract: without default features it pulls none of the heavy capability crates,
# each capability feature compiles alone, and a provider crate written against the contract alone
# (tests/downstream-provider) builds and passes its tests in a build of its own (so no other
# workspace crate's features are unified in).
echo "==> llmkit-core --no-default-features: dependency tree"
tree=$(cargo tree -p llmkit-core --no-default-features -e normal --prefix none)
for heavy in jsonschema schemars minijinja moka toml regex backon tokio-postgres postgres sqlx rusqlite redis; do
  if grep -q "^$heavy v" <<<"$tree"; then
    echo "llmkit-core without default features depends on $heavy:"
    cargo tree -p llmkit-core --no-default-features -e normal -i "$heavy"
    exit 1
  fi
done
echo "    $(sed 's/ (\*)$//' <<<"$tree" | sort -u | wc -l) crates, none of the heavy ones"
core_features=("" structured prompt cache resilience cost budget telemetry)
for f in "${core_features[@]}"; do
  echo "==> llmkit-core --no-default-features ${f:+--features $f}"
  cargo clippy -p llmkit-core --no-default-features ${f:+--features "$f"} -- -D warnings
done
echo "==> llmkit-downstream-provider (llmkit-core contract only)"
cargo clippy -p llmkit-downstream-provider --all-targets -- -D warnings
cargo test -p llmkit-downstream-provider
echo "all feature combinations compile"
