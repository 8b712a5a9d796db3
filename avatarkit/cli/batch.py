"""Many inputs, one output each: the loop every file-to-file verb shares.

``-o`` names a file when it has an HDF5 suffix (one input only), otherwise a folder that
receives ``STEM.h5`` per input. Before any work, every output is checked (it must not be an
input, a folder, or a file avatarkit did not write unless ``--overwrite``, and its folder must
be writable). Outputs that are already complete are skipped unless ``--overwrite``; each
input's outputs land together or not at all; a bad input is reported (one red line naming it)
and the others go on; the verb exits 1 at the end if any input failed. ``--jobs N`` runs N
worker processes, each with its share of the CPU threads. ``--shard K/N`` takes the inputs
whose output stem falls in shard K of N (a hash of the stem: the same split whatever the
order of the inputs or the machine), so N jobs of a scheduler together do the whole run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import signal
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import typer

from avatarkit.cli import console
from avatarkit.errors import AvatarkitError, AvatarkitWarning, OptionError
from avatarkit.io.formats import HDF5_SUFFIXES


@dataclasses.dataclass
class Outcome:
    """What happened to one input."""

    input: str
    output: str
    status: str  # written, skipped or failed
    message: str = ""
    warnings: list[str] = dataclasses.field(default_factory=list)
    info: dict = dataclasses.field(default_factory=dict)


def plan_outputs(inputs: list[Path], output: Path, file_suffixes=HDF5_SUFFIXES) -> list[tuple[Path, Path]]:
    """Pair each input with its output path (see the module docstring); ``-o`` names a file
    when its suffix is one of ``file_suffixes``."""
    if not inputs:
        raise OptionError("no input files given")
    if output.suffix.lower() in file_suffixes:
        if len(inputs) > 1:
            raise OptionError(f"{len(inputs)} inputs need an output folder, not the file {output}")
        return [(inputs[0], output)]
    if output.is_file():
        raise OptionError(f"{output} is a file: {len(inputs)} inputs need an output folder")
    seen: dict[str, Path] = {}
    for path in inputs:
        if path.stem in seen:
            raise OptionError(f"{seen[path.stem]} and {path} would both write {output / (path.stem + '.h5')}")
        seen[path.stem] = path
    return [(path, output / f"{path.stem}.h5") for path in inputs]


def plan_output_folders(inputs: list[Path], output: Path, name: str) -> list[tuple[Path, Path]]:
    """Pair each input with ``name`` in a folder of its own: ``output`` itself for one input,
    ``output/STEM/`` for several (``render --export``: the exported files sit beside it)."""
    if output.suffix.lower() in HDF5_SUFFIXES:
        raise OptionError(f"-o names a folder here (each input's {name} and its exported files), got {output}")
    if len(inputs) == 1:
        return [(inputs[0], output / name)]
    return [(src, dst.with_suffix("") / name) for src, dst in plan_outputs(inputs, output)]


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``K/N`` (1 <= K <= N) as (K, N); None for None."""
    if text is None:
        return None
    k, _, n = text.partition("/")
    if not (k.strip().isdigit() and n.strip().isdigit()) or not 1 <= int(k) <= int(n):
        raise OptionError(f"--shard takes K/N with 1 <= K <= N (e.g. 3/10), got {text!r}")
    return int(k), int(n)


def in_shard(output: Path, shard: tuple[int, int] | None) -> bool:
    """Whether ``output`` belongs to ``shard`` (K, N): by a hash of its stem."""
    if shard is None:
        return True
    k, n = shard
    digest = int.from_bytes(hashlib.sha1(output.stem.encode()).digest()[:8], "big")
    return digest % n == k - 1


def for_input(provenance, src: Path):
    """The verb's provenance with ``src`` as the one input of this output."""
    return dataclasses.replace(provenance, inputs=(str(src),))


def run(
    job: Callable[[Any, Path], dict],
    pairs: list[tuple[Any, Path]],
    kind: str,
    overwrite: bool = False,
    jobs: int = 1,
    quiet: bool = False,
    label: str = "",
    shard: str | None = None,
    inputs: Iterable[Path | None] = (),
    extra_outputs: Callable[[Path], list[Path]] | None = None,
) -> list[Outcome]:
    """Run ``job(input, output) -> info`` over ``pairs``; print failures and warnings as they come.

    ``inputs``: the other files the verb reads (none may be an output); ``extra_outputs``:
    the files an output brings with it (an export beside it), checked as it is. ``job`` must
    be picklable (a module-level function or a ``functools.partial`` of one) when ``jobs > 1``;
    it raises :class:`AvatarkitError` for bad input.
    """
    from avatarkit.io.hdf5 import is_complete
    from avatarkit.io.outputs import check_outputs

    if jobs < 1:
        raise OptionError(f"--jobs must be at least 1, got {jobs}")
    chosen = parse_shard(shard)
    pairs = [(src, dst) for src, dst in pairs if in_shard(dst, chosen)]
    read = [*inputs, *(src for src, _ in pairs if isinstance(src, Path))]
    outcomes: list[Outcome] = []
    todo = []
    for src, dst in pairs:
        if not overwrite and is_complete(dst, kind):
            outcomes.append(Outcome(str(src), str(dst), "skipped"))
        else:
            todo.append((src, dst))
    for _, dst in todo:  # every output, before any work
        check_outputs([dst, *(extra_outputs(dst) if extra_outputs else [])], read, kind, overwrite)
    with console.progress(quiet) as bar:
        task = bar.add_task(label, total=len(todo))
        for outcome in _results(job, todo, jobs):
            for message in outcome.warnings:
                console.warning(message)
            if outcome.status == "failed":
                console.error(outcome.message)
            outcomes.append(outcome)
            bar.advance(task)
    return outcomes


def finish(outcomes: list[Outcome], json: bool, quiet: bool, what: str) -> None:
    """Print the summary (or JSON) and exit 1 if any input failed."""
    written = [o for o in outcomes if o.status == "written"]
    skipped = [o for o in outcomes if o.status == "skipped"]
    failed = [o for o in outcomes if o.status == "failed"]
    if json:
        console.emit_json(
            {
                "written": [dict(input=o.input, output=o.output, **o.info) for o in written],
                "skipped": [o.output for o in skipped],
                "failed": [{"input": o.input, "error": o.message} for o in failed],
            }
        )
    if not failed:
        note = f", {len(skipped)} already complete (--overwrite to redo)" if skipped else ""
        console.info(f"wrote {len(written)} {what}{note}", quiet or json)
        return
    if len(outcomes) > 1:  # a lone input's own error line says it all
        console.error(
            f"{len(failed)} of {len(outcomes)} inputs failed: {', '.join(o.input for o in failed)} "
            f"({len(written)} {what} written)"
        )
    raise typer.Exit(1)


def _results(job, todo, jobs):
    if jobs == 1 or len(todo) <= 1:
        for src, dst in todo:
            yield _attempt(job, src, dst)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from avatarkit.backends.warp import cpu_threads

    workers = min(jobs, len(todo))
    threads = max(1, cpu_threads() // workers)
    # spawn, not fork: warp, torch and OpenGL state must not be shared with a parent
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(threads,))
    try:
        futures = [pool.submit(_attempt, job, src, dst) for src, dst in todo]
        for future in as_completed(futures):
            yield future.result()
    except BaseException:  # Ctrl-C or SIGTERM: stop the workers; each removes its temporary files
        pool.shutdown(wait=False, cancel_futures=True)
        for process in list(getattr(pool, "_processes", {}).values()):
            if process.is_alive():
                process.terminate()
        raise
    finally:
        pool.shutdown(wait=True)


def _init_worker(threads: int) -> None:
    os.environ["AVATARKIT_THREADS"] = str(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process stops the run
    signal.signal(signal.SIGTERM, _terminated)  # a write in progress is abandoned cleanly


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


def _attempt(job, src, dst: Path) -> Outcome:
    from avatarkit.io.atomic import landing

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AvatarkitWarning)
        try:
            with landing():  # the output and what comes with it (exports, previews) land together
                info = job(src, dst)
            status, message = "written", ""
        except AvatarkitError as exc:
            # every failure names its input, even when the core did not know the file
            info, status, message = {}, "failed", str(exc) if exc.path is not None else f"{src}: {exc}"
    # every warning names its input, even when the core did not know the file
    notes = [_naming(str(w.message), src) for w in caught if issubclass(w.category, AvatarkitWarning)]
    for w in caught:  # anything else is not ours to format: show it as Python would
        if not issubclass(w.category, AvatarkitWarning):
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return Outcome(str(src), str(dst), status, message, notes, info or {})


def _naming(message: str, src) -> str:
    return message if message.startswith(str(src)) else f"{src}: {message}"
