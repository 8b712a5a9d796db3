"""Files matched by stem: ``human_0007.h5`` in one folder goes with ``human_0007.h5`` (or
``.obj``) in another. The one matcher behind every verb that pairs inputs (``train``'s
views, samples and meshes; ``evaluate-chamfer``'s prediction and ground-truth folders).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from avatarkit.errors import AvatarkitWarning, InputError


def files_by_stem(paths: list[Path], suffixes: tuple[str, ...], what: str) -> dict[str, Path]:
    """Files by stem from ``paths``, files and folders (a folder gives its files whose suffix
    is one of ``suffixes``, in name order).

    The same stem twice with different suffixes (``a.obj`` beside ``a.h5``): the one whose
    suffix comes first in ``suffixes`` is kept, with a warning. With the same suffix (two
    folders both holding ``a.h5``): an :class:`InputError`, since either could be meant.
    ``what`` names the files in messages (``views``, ``predicted meshes``).
    """
    found: dict[str, Path] = {}
    rank = {s: i for i, s in enumerate(suffixes)}
    for path in map(Path, paths):
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in rank and p.is_file())
            if not files:
                raise InputError(f"no {what} files ({', '.join(suffixes)}) in this folder", path)
        elif path.is_file():
            files = [path]
        else:
            raise InputError("no such file or folder", path)
        for f in files:
            other = found.get(f.stem)
            if other is None or other == f:
                found[f.stem] = f
            elif other.suffix.lower() == f.suffix.lower():
                raise InputError(f"{other} and {f} are both {what} of {f.stem!r}", path)
            else:
                keep = min(other, f, key=lambda p: rank.get(p.suffix.lower(), len(rank)))
                warnings.warn(f"{other} and {f} share a stem; using {keep.name}", AvatarkitWarning, stacklevel=2)
                found[f.stem] = keep
    return found


def match_stems(groups: dict[str, dict[str, Path]]) -> list[str]:
    """The stems present in every group (``{"views": files_by_stem(...), ...}``), sorted.

    Stems missing from some group are left out with one warning naming them; no stem in
    common is an :class:`InputError` that shows some stems of each group.
    """
    sets = [set(files) for files in groups.values()]
    common = sorted(set.intersection(*sets)) if sets else []
    if not common:
        shown = "; ".join(f"{name} stems: {_some(files)}" for name, files in groups.items())
        raise InputError(f"no stem is shared by the {' and '.join(groups)} files ({shown})")
    missing = sorted(set.union(*sets) - set(common))
    if missing:
        warnings.warn(
            f"{len(missing)} file(s) without a partner left out: {_some(missing)}", AvatarkitWarning, stacklevel=2
        )
    return common


def _some(names) -> str:
    names = sorted(names)
    if not names:
        return "none"
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
