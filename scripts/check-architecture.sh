#!/usr/bin/env bash
# Checks the crate graph drawn in docs/architecture.md against `cargo metadata`: every edge the
# diagram lists is a real dependency between workspace crates, and every real one is listed
# (normal dependencies only; dev-dependencies are test scaffolding). An edge marked
# `(feature NAME)` must be an optional dependency enabled by that feature of the depending crate.
# Usage: scripts/check-architecture.sh          check (CI runs it)
#        scripts/check-architecture.sh --print  print the edges as cargo metadata sees them
set -euo pipefail
cd "$(dirname "$0")/.."
metadata=$(cargo metadata --format-version 1 --no-deps --offline 2>/dev/null || cargo metadata --format-version 1 --no-deps)
MODE="${1:-check}" DOC=docs/architecture.md python3 -c '
import json, os, re, sys

meta = json.loads(sys.stdin.read())
members = {p["name"]: p for p in meta["packages"]}
real = {}
for name, p in members.items():
    for d in p["dependencies"]:
        if d["kind"] is None and d["name"] in members:
            feature = None
            if d["optional"]:
                # The feature that turns it on: one that lists `dep:NAME` or `NAME`.
                feats = [f for f, v in p["features"].items()
                         if "dep:" + d["name"] in v or d["name"] in v]
                feature = sorted(feats)[0] if feats else "?"
            real[(name, d["name"])] = feature

if os.environ["MODE"] == "--print":
    for (a, b), f in sorted(real.items()):
        print(f"{a} ─▶ {b}" + (f" (feature {f})" if f else ""))
    sys.exit(0)

text = open(os.environ["DOC"], encoding="utf-8").read()
block = re.search(r"<!-- crate-graph -->\s*```[a-z]*\n(.*?)```", text, re.S)
if not block:
    sys.exit("docs/architecture.md: no ```-fenced block after <!-- crate-graph -->")
drawn = {}
for line in block.group(1).splitlines():
    line = line.split("#")[0].strip()
    if "─▶" not in line:
        continue
    left, right = (s.strip() for s in line.split("─▶", 1))
    for target in (t.strip() for t in right.split(",")):
        m = re.fullmatch(r"([\w-]+)(?:\s+\(feature ([\w-]+)\))?", target)
        if not m:
            sys.exit(f"docs/architecture.md: cannot read edge target {target!r} in {line!r}")
        drawn[(left, m.group(1))] = m.group(2)

errors = []
for edge, feature in sorted(drawn.items()):
    if edge not in real:
        errors.append(f"drawn but not a dependency: {edge[0]} ─▶ {edge[1]}")
    elif feature is not None and real[edge] is None:
        errors.append(f"drawn behind feature {feature} but not optional: {edge[0]} ─▶ {edge[1]}")
    elif feature is not None and feature != real[edge]:
        errors.append(f"drawn behind feature {feature}, enabled by {real[edge]}: {edge[0]} ─▶ {edge[1]}")
for edge, feature in sorted(real.items()):
    if edge not in drawn:
        errors.append(f"a dependency missing from the diagram: {edge[0]} ─▶ {edge[1]}" + (f" (feature {feature})" if feature else ""))
for name in sorted(members):
    if not any(name in e for e in drawn):
        errors.append(f"a workspace crate missing from the diagram: {name}")
if errors:
    print("docs/architecture.md crate graph disagrees with cargo metadata:", *errors, sep="\n  ")
    sys.exit(1)
print(f"crate graph in docs/architecture.md matches cargo metadata ({len(drawn)} edges, {len(members)} crates)")
' <<<"$metadata"
