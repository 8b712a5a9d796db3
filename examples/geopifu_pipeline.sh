#!/usr/bin/env bash
# Geo-PIFu, end to end: synthetic people -> views, voxels and query points -> the coarse
# volume network, then the query network (train geopifu --stage both) -> a reconstruction ->
# Geo-PIFu's scores. As typed at full scale (200 people, Geo-PIFu's networks, a GPU); every
# size can be turned down through the environment, e.g. the CPU-sized run the tests do:
#   N=3 SIZE=96 CONFIG=small STEPS=4 RESOLUTION=32 bash examples/geopifu_pipeline.sh /tmp/geo
set -euo pipefail
cd "${1:-.}"
N=${N:-200}                       # people (the last one is the test subject)
SIZE=${SIZE:-}                    # image height (default: the render preset's)
CONFIG=${CONFIG:-default}         # default (Geo-PIFu's networks) or small
STEPS=${STEPS:-}                  # training steps, both stages (default: the config's)
RESOLUTION=${RESOLUTION:-256}
GPUS=${GPUS:-1}                   # processes for torchrun (DDP); 1 runs without it
RENDER_PRESET=${RENDER_PRESET:-geopifu}   # orthographic, 4 yaws, as Geo-PIFu renders
SAMPLE_PRESET=${SAMPLE_PRESET:-geopifu}   # Geo-PIFu's query sampling (3.5-voxel sigma)
PROTOCOL=${PROTOCOL:-geopifu}             # Geo-PIFu's metrics (vertex CD and PSD x1e4, normals)
TRAIN_ARGS=${TRAIN_ARGS:-}        # more options for train geopifu
test=$(printf "human_%04d" $((N - 1)))

avatarkit synth -n "$N" --seed 0 -o data/meshes --quiet
render=(render data/meshes/*.h5 -o data/views --preset "$RENDER_PRESET" --quiet)
[ -n "$SIZE" ] && render+=(--size "$SIZE")
avatarkit "${render[@]}"
avatarkit voxelize data/meshes/*.h5 -o data/voxels --preset geopifu --quiet
avatarkit sample-sdf data/meshes/*.h5 -o data/samples --preset "$SAMPLE_PRESET" --quiet
# the test subject is kept out of training: its files move to data/test
mkdir -p data/test
for kind in views voxels samples; do mv "data/$kind/$test.h5" "data/test/$kind.h5"; done

train=(train geopifu --views data/views --voxels data/voxels --samples data/samples -o runs/geopifu)
train+=(--config "$CONFIG" --stage both --quiet)
[ -n "$STEPS" ] && train+=(--max-steps "$STEPS")
# shellcheck disable=SC2206
train+=($TRAIN_ARGS)
if [ "$GPUS" -gt 1 ]; then
    torchrun --nproc_per_node "$GPUS" -m avatarkit "${train[@]}"
else
    avatarkit "${train[@]}"
fi

avatarkit reconstruct runs/geopifu data/test/views.h5 --view 0 -o pred.h5 --resolution "$RESOLUTION" --preview --quiet
avatarkit evaluate-chamfer pred.h5 "data/meshes/$test.h5" --protocol "$PROTOCOL" --json > metrics.json
python3 - <<'PY'
import json
m = json.load(open("metrics.json"))
print("test subject: " + ", ".join(f"{k} {v:.4g}" for k, v in m.items() if isinstance(v, (int, float))))
PY
