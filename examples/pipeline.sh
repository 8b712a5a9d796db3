#!/usr/bin/env bash
# The main job, end to end: synthetic people -> PIFu training data -> a trained PIFu ->
# reconstructions -> scores. As typed at full scale (200 people, the paper's network, a GPU);
# every size can be turned down through the environment, e.g. the CPU-sized run the tests do:
#   N=3 VIEWS=4 SIZE=64 CONFIG=small STEPS=5 RESOLUTION=32 bash examples/pipeline.sh /tmp/pipe
set -euo pipefail
cd "${1:-.}"
N=${N:-200}                 # people (the last one is the test subject)
VIEWS=${VIEWS:-36}          # views per person (PIFu renders 360)
SIZE=${SIZE:-512}           # image side
CONFIG=${CONFIG:-default}   # default (PIFu's 4 x 256 hourglass) or small
STEPS=${STEPS:-}            # training steps (default: the config's)
RESOLUTION=${RESOLUTION:-256}
GPUS=${GPUS:-1}             # processes for torchrun (DDP); 1 runs without it
TRAIN_ARGS=${TRAIN_ARGS:-}  # more options for train pifu
test=$(printf "human_%04d" $((N - 1)))

avatarkit synth -n "$N" --seed 0 -o data/meshes --quiet
avatarkit render data/meshes/*.h5 -o data/views --preset pifu --views "$VIEWS" --size "$SIZE" --lighting prt --quiet
avatarkit sample-sdf data/meshes/*.h5 -o data/samples --preset pifu --quiet
# the test subject is kept out of training: its files move to data/test
mkdir -p data/test
mv "data/views/$test.h5" data/test/views.h5
mv "data/samples/$test.h5" data/test/samples.h5

train=(train pifu --views data/views --samples data/samples -o runs/pifu --config "$CONFIG" --quiet)
[ -n "$STEPS" ] && train+=(--max-steps "$STEPS")
# shellcheck disable=SC2206
train+=($TRAIN_ARGS)
if [ "$GPUS" -gt 1 ]; then
    torchrun --nproc_per_node "$GPUS" -m avatarkit "${train[@]}"
else
    avatarkit "${train[@]}"
fi

avatarkit reconstruct runs/pifu data/test/views.h5 --view 0 -o pred.h5 --resolution "$RESOLUTION" --preview --quiet
avatarkit evaluate-chamfer pred.h5 "data/meshes/$test.h5" --units cm --json > metrics.json
# a photo: any image with the subject framed as the training views, and its mask
if [ -f photo.png ]; then
    avatarkit reconstruct runs/pifu photo.png --mask photo_mask.png -o photo_mesh.h5 --resolution "$RESOLUTION"
fi
python3 - <<'PY'
import json
m = json.load(open("metrics.json"))
print(f"test subject: chamfer {m['chamfer_l1']:.3f} cm, P2S {m['p2s']:.3f} cm")
PY
