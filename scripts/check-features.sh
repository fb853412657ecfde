#!/usr/bin/env bash
# Checks that llmkit-providers compiles warning-free (clippy, -D warnings, all targets) with no
# provider and with each provider feature alone, so no provider silently depends on another's
# code; then the conformance kit (llmkit-testkit) on its own, which must build without
# llmkit-providers; that llmkit-core's contract stays small; and that the llmkit facade's default
# features stay slim and build an application (tests/facade-user) on their own.
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
core_features=("" structured prompt cache resilience cost budget telemetry tiktoken)
for f in "${core_features[@]}"; do
  echo "==> llmkit-core --no-default-features ${f:+--features $f}"
  cargo clippy -p llmkit-core --no-default-features ${f:+--features "$f"} -- -D warnings
done
echo "==> llmkit-downstream-provider (llmkit-core contract only)"
cargo clippy -p llmkit-downstream-provider --all-targets -- -D warnings
cargo test -p llmkit-downstream-provider

# The facade's default features (issue 19 item 5): the core layers, the providers and guard; no
# database client, ANN index, exporter or CLI in the tree. Every [[example]]/[[test]]
# that the defaults cover builds warning-free; an application crate on the defaults
# (tests/facade-user, its own build) runs the README's snippet and derives JsonSchema through
# `llmkit::schemars`.
echo "==> llmkit (default features): dependency tree"
tree=$(cargo tree -p llmkit -e normal --prefix none)
for heavy in hnsw_rs rayon usearch cxx tokio-postgres postgres clap indicatif opentelemetry metrics; do
  if grep -q "^$heavy v" <<<"$tree"; then
    echo "llmkit with default features depends on $heavy:"
    cargo tree -p llmkit -e normal -i "$heavy"
    exit 1
  fi
done
echo "    $(sed 's/ (\*)$//' <<<"$tree" | sort -u | wc -l) crates (cargo tree -p llmkit -e normal --prefix none | sed 's/ (\*)\$//' | sort -u | wc -l)"
echo "==> llmkit --no-default-features"
cargo clippy -p llmkit --no-default-features -- -D warnings
echo "==> llmkit (default features, all targets)"
cargo clippy -p llmkit --all-targets -- -D warnings
echo "==> llmkit-facade-user (README snippet, schemars through the facade)"
cargo clippy -p llmkit-facade-user --all-targets -- -D warnings
cargo test -p llmkit-facade-user

# rust-version is the toolchain CI builds with, so the claim is verified by this very build
# (cargo refuses a toolchain older than rust-version; a newer CI toolchain must move it).
msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml | head -1)
rustc_version=$(rustc --version | awk '{print $2}')
if [ "${rustc_version%.*}" != "$msrv" ]; then
  echo "rust-version = \"$msrv\" but CI builds with rustc $rustc_version: set rust-version to ${rustc_version%.*}" >&2
  exit 1
fi
echo "==> rust-version $msrv = the CI toolchain (rustc $rustc_version)"
# Members inherit it (clippy lints each package for its own rust-version; a member claiming an
# older one would be a second, unverified claim).
own=$(git ls-files '*Cargo.toml' | grep -v '^Cargo.toml$' | xargs grep -l '^rust-version = ' || true)
if [ -n "$own" ]; then
  echo "these members set their own rust-version; use rust-version.workspace = true: $own" >&2
  exit 1
fi

# Issue 20: the facade builds with each storage-backend feature alone.
for f in postgres pgvector sqlite; do
  echo "==> llmkit --no-default-features --features $f"
  cargo clippy -p llmkit --no-default-features --features "$f" -- -D warnings
done
echo "all feature combinations compile"
