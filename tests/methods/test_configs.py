"""Method configs: their docstrings become help, they round-trip through checkpoints."""

from __future__ import annotations

import pytest

from avatarkit.errors import OptionError
from avatarkit.methods.configs import coerce, field_docs, from_dict, replace, to_dict
from avatarkit.methods.pifu.config import PRESETS, PifuConfig
from avatarkit.methods.registry import METHODS


def test_every_field_has_a_docstring_including_inherited_ones():
    docs = field_docs(PifuConfig)
    import dataclasses

    names = [f.name for f in dataclasses.fields(PifuConfig)]
    assert [n for n in names if not docs.get(n)] == []
    assert docs["max_steps"].startswith("Optimisation steps")  # from TrainConfig
    assert "num_sample_inout" in docs["points"]  # PIFu's own name is given


def test_round_trip_and_coercion():
    small = PRESETS["small"]
    assert from_dict(PifuConfig, to_dict(small)) == small
    changed = replace(small, mlp="64, 32", lr=1, flip="false", background_dir=None)
    assert changed.mlp == (64, 32) and changed.lr == 1.0 and isinstance(changed.lr, float) and changed.flip is False
    assert coerce(tuple[float, ...], [0.5, "0.7"]) == (0.5, 0.7)
    with pytest.raises(OptionError, match="--max-steps: expected int"):
        replace(small, max_steps="many")
    with pytest.raises(OptionError, match="does not know: wings"):
        from_dict(PifuConfig, {**to_dict(small), "wings": 2})


def test_presets_are_valid_and_default_is_the_paper():
    for config in PRESETS.values():
        config.check()
    paper = PRESETS["default"]
    assert (paper.stacks, paper.channels, paper.mlp, paper.image_size, paper.points) == (
        4, 256, (1024, 512, 256, 128), 512, 5000
    )  # fmt: skip
    assert paper.optimizer == "rmsprop" and paper.lr == 1e-3
    assert METHODS["pifu"].config is PifuConfig
    with pytest.raises(OptionError, match="multiple of 4"):
        replace(paper, image_size=130).check()
