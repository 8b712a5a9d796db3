#!/usr/bin/env bash
# The main job on built-in data: synthetic people, rendered, sampled, voxelized, their
# textures unwrapped back from the renders. Later issues extend this into
# train -> reconstruct -> evaluate.
set -euo pipefail
out=${1:-demo_out}
mkdir -p "$out"
avatarkit synth -n 4 --seed 0 --texture clothes -o "$out/meshes"
avatarkit synth -n 2 --seed 0 --part head --expressions -o "$out/heads"
avatarkit inspect "$out"/meshes/*.h5 "$out"/heads/*.h5 --json > "$out/inspect.json"
avatarkit convert "$out/meshes/human_0000.h5" "$out/human_0000.obj"
avatarkit convert "$out/human_0000.obj" "$out/human_0000_roundtrip.h5"

# training data, as PIFu makes it (fewer views here)
avatarkit render "$out"/meshes/*.h5 -o "$out/views" --preset pifu --views 36 --lighting prt --size 256 --quiet
avatarkit sample-sdf "$out"/meshes/*.h5 -o "$out/samples" --preset pifu --points 20000 --quiet
avatarkit voxelize "$out"/meshes/*.h5 -o "$out/voxels" --preset geopifu --quiet
# a head as H3DS/IDR data, and a texture recovered from eight views
avatarkit render "$out/heads/head_0000.h5" -o "$out/head_idr" --views 16 --size 256 --export idr --quiet
avatarkit render "$out/meshes/human_0001.h5" -o "$out/human_0001_views.h5" --views 8 --size 512 --quiet
avatarkit unwrap-uv "$out/meshes/human_0001.h5" --views "$out/human_0001_views.h5" --symmetric \
    -o "$out/human_0001_tex.h5" --export png
echo "demo outputs in $out/"
