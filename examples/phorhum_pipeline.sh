#!/usr/bin/env bash
# Phorhum, end to end: synthetic people in clothes -> views lit by HDR environments (a map per
# view) and OSA's SDF points with normals and colours -> train phorhum -> a coloured mesh from a
# photo (albedo, then shaded) -> scores. As typed at full scale (200 people, Phorhum-sized
# networks, a GPU); every size can be turned down through the environment, e.g. the CPU-sized
# run the tests do:
#   N=3 VIEWS=4 SIZE=64 POINTS=20000 CONFIG=small STEPS=4 RESOLUTION=32 bash examples/phorhum_pipeline.sh /tmp/ph
set -euo pipefail
cd "${1:-.}"
N=${N:-200}                  # people (the last one is the test subject)
VIEWS=${VIEWS:-}             # views per person (default: the pifu preset's 360)
SIZE=${SIZE:-}               # image side (default: the preset's 512)
HDRI=${HDRI:-sky}            # a folder of .hdr/.exr maps (one drawn per view), or sky: the built-in sky
POINTS=${POINTS:-}           # SDF points per person (default: osa's 1M)
CONFIG=${CONFIG:-default}    # default (Phorhum-sized networks) or small
STEPS=${STEPS:-}             # training steps (default: the config's)
RESOLUTION=${RESOLUTION:-256}
TRAIN_ARGS=${TRAIN_ARGS:-}   # more options for train phorhum
test=$(printf "human_%04d" $((N - 1)))

avatarkit synth -n "$N" --texture clothes --seed 0 -o data/meshes --quiet
render=(render data/meshes/*.h5 -o data/views --preset pifu --lighting prt --hdri "$HDRI" --quiet)
[ -n "$VIEWS" ] && render+=(--views "$VIEWS")
[ -n "$SIZE" ] && render+=(--size "$SIZE")
avatarkit "${render[@]}"
sample=(sample-sdf data/meshes/*.h5 -o data/sdf --preset osa --quiet)
[ -n "$POINTS" ] && sample+=(--points "$POINTS")
avatarkit "${sample[@]}"
# the test subject is kept out of training: its files move to data/test
mkdir -p data/test
mv "data/views/$test.h5" data/test/views.h5
mv "data/sdf/$test.h5" data/test/sdf.h5

train=(train phorhum --views data/views --samples data/sdf -o runs/phorhum --config "$CONFIG" --quiet)
[ -n "$STEPS" ] && train+=(--max-steps "$STEPS")
# shellcheck disable=SC2206
train+=($TRAIN_ARGS)
avatarkit "${train[@]}"

# the test subject's front view as a user's photo and mask, framed as the training views
python3 - <<'PY'
import h5py
from PIL import Image
with h5py.File("data/test/views.h5") as f:
    Image.fromarray(f["/images/rgb"][0]).save("photo.png")
    Image.fromarray(f["/images/mask"][0]).save("photo_mask.png")
PY
avatarkit reconstruct runs/phorhum photo.png --mask photo_mask.png -o me.ply --resolution "$RESOLUTION" --checkpoint last --quiet
avatarkit reconstruct runs/phorhum photo.png --mask photo_mask.png -o me_shaded.ply --shaded \
    --resolution "$RESOLUTION" --checkpoint last --quiet
avatarkit evaluate-chamfer me.ply "data/meshes/$test.h5" --json > metrics.json
python3 - <<'PY'
import json
m = json.load(open("metrics.json"))
print("test subject: " + ", ".join(f"{k} {v:.4g}" for k, v in m.items() if isinstance(v, (int, float))))
PY
if avatarkit view --help > /dev/null 2>&1; then  # the browser viewer, where this avatarkit has it
    echo "look at it: avatarkit view me.ply data/meshes/$test.h5 data/test/sdf.h5"
fi
