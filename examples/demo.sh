#!/usr/bin/env bash
# The main job on built-in data, small enough for a 2-core CPU (about 12 minutes): synthetic
# people rendered and sampled as PIFu trains on them, a small PIFu trained on them, a person
# it never saw reconstructed from one image and scored against the truth. Also: heads as
# H3DS/IDR data, voxels, and a texture recovered from renders. Everything lands in $1.
# Training is budgeted by time (MAXTIME seconds), so the demo ends on time on a slower
# machine too; STEPS=N trains exactly N steps instead (bit-identical runs).
set -euo pipefail
out=${1:-demo_out}
MAXTIME=${MAXTIME:-480}
if [ -n "${STEPS:-}" ]; then budget=(--max-steps "$STEPS"); else budget=(--max-steps 100000 --max-time "$MAXTIME"); fi
mkdir -p "$out"
avatarkit synth -n 6 --seed 0 --texture clothes -o "$out/meshes"
avatarkit synth -n 1 --seed 1 --texture clothes -o "$out/test"  # the held-out person
avatarkit synth -n 2 --seed 0 --part head --expressions -o "$out/heads"
avatarkit inspect "$out"/meshes/*.h5 "$out"/heads/*.h5 --json > "$out/inspect.json"
avatarkit convert "$out/meshes/human_0000.h5" "$out/human_0000.obj"
avatarkit convert "$out/human_0000.obj" "$out/human_0000_roundtrip.h5"

# training data, as PIFu makes it (36 views instead of 360, 256 pixels instead of 512)
avatarkit render "$out"/meshes/*.h5 -o "$out/views" --preset pifu --views 36 --lighting prt --size 256 --quiet
avatarkit sample-sdf "$out"/meshes/*.h5 -o "$out/samples" --preset pifu --quiet
avatarkit voxelize "$out"/meshes/*.h5 -o "$out/voxels" --preset geopifu --quiet
avatarkit render "$out/test/human_0000.h5" -o "$out/test/views.h5" --preset pifu --views 4 --lighting prt --size 256 --quiet

# train a small PIFu (one held-out subject validates it), then reconstruct the unseen person
avatarkit train pifu --views "$out/views" --samples "$out/samples" -o "$out/run" --config small \
    "${budget[@]}" --val-fraction 0.2 --overwrite
avatarkit reconstruct "$out/run" "$out/test/views.h5" --view 0 -o "$out/report/prediction.h5" --preview --quiet
avatarkit evaluate-chamfer "$out/report/prediction.h5" "$out/test/human_0000.h5" --units cm --json \
    > "$out/report/metrics.json"

# a head as H3DS/IDR data, and a texture recovered from eight views
avatarkit render "$out/heads/head_0000.h5" -o "$out/head_idr" --views 16 --size 256 --export idr --quiet
avatarkit render "$out/meshes/human_0001.h5" -o "$out/human_0001_views.h5" --views 8 --size 512 --quiet
avatarkit unwrap-uv "$out/meshes/human_0001.h5" --views "$out/human_0001_views.h5" --symmetric \
    -o "$out/human_0001_tex.h5" --export png

python3 - "$out/report/metrics.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print(f"held-out person: chamfer {m['chamfer_l1']:.2f} cm, P2S {m['p2s']:.2f} cm, "
      f"normal consistency {m['normal_consistency']:.3f}")
PY
echo "report: $out/report/ (metrics.json; prediction.preview.png: input, ground truth, prediction front and side)"
