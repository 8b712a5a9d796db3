#!/usr/bin/env bash
# The main job on built-in data, small enough for a 2-core CPU, in BUDGET seconds (14 minutes):
# synthetic people rendered and sampled as PIFu trains on them, a small PIFu trained on them,
# a person it never saw reconstructed from one photo-like front view and scored against the
# truth. Also: heads as H3DS/IDR data, voxels, and a texture recovered from renders.
# Everything lands in $1. Training gets what the budget leaves after the data (so the demo
# ends on time on a slower machine too); STEPS=N trains exactly N steps instead (bit-identical).
set -euo pipefail
out=${1:-demo_out}
BUDGET=${BUDGET:-840}  # seconds for the whole demo
PEOPLE=${PEOPLE:-30}   # training people (one in five held out to validate)
mkdir -p "$out"
avatarkit synth -n "$PEOPLE" --seed 0 --texture clothes -o "$out/meshes" --quiet
avatarkit synth -n 1 --seed 1 --texture clothes -o "$out/test" --quiet  # the person never seen
avatarkit synth -n 2 --seed 0 --part head --expressions -o "$out/heads" --quiet
avatarkit inspect "$out"/meshes/*.h5 "$out"/heads/*.h5 --json > "$out/inspect.json"
avatarkit convert "$out/meshes/human_0000.h5" "$out/human_0000.obj" --overwrite
avatarkit convert "$out/human_0000.obj" "$out/human_0000_roundtrip.h5"

# training data as PIFu makes it, sized for the budget: many people, few views each (8 of
# 256 pixels from the front half, where a photo is taken), PIFu's points and Geo-PIFu's voxels
avatarkit render "$out"/meshes/*.h5 -o "$out/views" --preset pifu --views 8 --yaws -90 90 --lighting prt \
    --size 256 --quiet
avatarkit sample-sdf "$out"/meshes/*.h5 -o "$out/samples" --preset pifu --quiet
avatarkit voxelize "$out"/meshes/*.h5 -o "$out/voxels" --preset geopifu --quiet
avatarkit render "$out/test/human_0000.h5" -o "$out/test/views.h5" --preset pifu --views 4 --lighting prt \
    --size 256 --quiet

# a head as H3DS/IDR data, and a texture recovered from eight views
avatarkit render "$out/heads/head_0000.h5" -o "$out/head_idr" --views 16 --size 256 --export idr --quiet
avatarkit render "$out/meshes/human_0001.h5" -o "$out/human_0001_views.h5" --views 8 --size 512 --quiet
avatarkit unwrap-uv "$out/meshes/human_0001.h5" --views "$out/human_0001_views.h5" --symmetric \
    -o "$out/human_0001_tex.h5" --export png --overwrite --quiet

# a small PIFu for what the budget leaves (2 minutes kept for what follows), then the person
# it never saw reconstructed from its front view
if [ -n "${STEPS:-}" ]; then
    budget=(--max-steps "$STEPS")
else
    left=$((BUDGET - SECONDS - 120))
    budget=(--max-steps 100000 --max-time $((left > 120 ? left : 120)))
fi
avatarkit train pifu --views "$out/views" --samples "$out/samples" -o "$out/run" --config small \
    --silhouette-draw 0.8 "${budget[@]}" --val-fraction 0.2 --overwrite
avatarkit reconstruct "$out/run" "$out/test/views.h5" --view 0 -o "$out/report/prediction.h5" --preview \
    --overwrite --quiet
avatarkit evaluate-chamfer "$out/report/prediction.h5" "$out/test/human_0000.h5" --units cm --json \
    > "$out/report/metrics.json"

python3 - "$out/report/metrics.json" "$SECONDS" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print(f"held-out person: chamfer {m['chamfer_l1']:.2f} cm, P2S {m['p2s']:.2f} cm, "
      f"normal consistency {m['normal_consistency']:.3f} (demo: {int(sys.argv[2]) // 60} min {int(sys.argv[2]) % 60} s)")
PY
echo "report: $out/report/ (metrics.json; prediction.preview.png: input, ground truth, prediction front and side)"
