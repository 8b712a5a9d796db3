#!/usr/bin/env bash
# The main job on built-in data. For now: synthetic people, validated, and one
# converted to OBJ. Later issues extend this into render -> sample-sdf -> train ->
# reconstruct -> evaluate.
set -euo pipefail
out=${1:-demo_out}
mkdir -p "$out"
avatarkit synth -n 4 --seed 0 --texture clothes -o "$out/meshes"
avatarkit synth -n 2 --seed 0 --part head --expressions -o "$out/heads"
avatarkit inspect "$out"/meshes/*.h5 "$out"/heads/*.h5 --json > "$out/inspect.json"
avatarkit convert "$out/meshes/human_0000.h5" "$out/human_0000.obj"
avatarkit convert "$out/human_0000.obj" "$out/human_0000_roundtrip.h5"
echo "demo outputs in $out/"
