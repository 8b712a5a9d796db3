#!/usr/bin/env bash
# Sample&Refine, end to end: synthetic people in clothes -> one view per yaw (-90..90) ->
# each view's partial UV texture, mirror-filled -> train texture (SamplerNet and RefinerNet) ->
# a held-out person's texture completed from one view -> a turntable of it. As typed at full
# scale (300 people, the seed's networks, a GPU); every size can be turned down through the
# environment, e.g. the CPU-sized run the tests do:
#   N=3 SIZE=64 RENDER=96 CONFIG=tiny STEPS=4 TURNTABLE=4 bash examples/texture_pipeline.sh /tmp/tex
set -euo pipefail
cd "${1:-.}"
N=${N:-300}                       # people (the last one is the test subject)
SIZE=${SIZE:-256}                 # texture side, texels (synth's texture and unwrap-uv's)
RENDER=${RENDER:-512}             # image side of the views, pixels
CONFIG=${CONFIG:-default}         # default (the seed's widths), small (CPU) or tiny
STEPS=${STEPS:-}                  # training steps (default: the config's)
TURNTABLE=${TURNTABLE:-36}        # views of the final turntable
TRAIN_ARGS=${TRAIN_ARGS:-}        # more options for train texture
test=$(printf "human_%04d" $((N - 1)))

avatarkit synth -n "$N" --texture clothes --texture-size "$SIZE" --seed 0 -o data/meshes --quiet
# the test subject is kept out of training: its mesh moves to data/test
mkdir -p data/test
mv "data/meshes/$test.h5" data/test/person.h5
avatarkit render data/meshes/*.h5 -o data/views --preset texture --size "$RENDER" --quiet
avatarkit unwrap-uv data/meshes/*.h5 --views data/views -o data/partial --symmetric --per-view --size "$SIZE" --quiet

train=(train texture --partial data/partial --meshes data/meshes -o runs/texture --config "$CONFIG" --quiet)
[ -n "$STEPS" ] && train+=(--max-steps "$STEPS")
# shellcheck disable=SC2206
train+=($TRAIN_ARGS)
avatarkit "${train[@]}"

# one photo of the test subject: the texture preset with one view looks from yaw 0, its front
avatarkit render data/test/person.h5 -o photo_views.h5 --preset texture --views 1 --size "$RENDER" --quiet
avatarkit unwrap-uv data/test/person.h5 --views photo_views.h5 -o tex.h5 --complete runs/texture --json > complete.json
avatarkit render data/test/person.h5 --texture tex.h5 -o turntable --views "$TURNTABLE" --size "$RENDER" --export png --quiet
python3 - <<'PY'
import json
c = json.load(open("complete.json"))
print(f"test subject: seen {c['seen_fraction']:.1%}, mirrored {c['mirrored_fraction']:.1%}, completed by {c['completion']}")
PY
