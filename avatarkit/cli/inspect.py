"""``avatarkit inspect``: what is inside a file, validated."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from avatarkit.cli import console
from avatarkit.cli.options import Json


def inspect(
    files: Annotated[list[Path], typer.Argument(help="avatarkit HDF5 files or mesh files.")],
    json: Json = False,
) -> None:
    """Show the tree, shapes, dtypes and attributes of each file and whether it is valid.

    Exits 1 when any file is missing, unreadable or breaks its kind's contract.
    """
    from avatarkit.io.describe import describe_file

    reports = [describe_file(p) for p in files]
    if json:
        console.emit_json(reports if len(reports) > 1 else reports[0])
    else:
        for report in reports:
            _print(report)
    bad = [r for r in reports if not r["valid"]]
    for r in bad:
        console.error(f"{r['path']}: {r['problems'][0]}")
    if bad:
        raise typer.Exit(1)


def _print(report: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.tree import Tree

    verdict = "[green]valid[/]" if report["valid"] else "[red]INVALID[/]"
    kind = report.get("kind") or "?"
    tree = Tree(f"{verdict} [bold]{escape(report['path'])}[/] ({escape(str(kind))})")
    for key, value in report.get("summary", {}).items():
        tree.add(f"{key}: {value}")
    attrs = report.get("attrs", {})
    if attrs:
        node = tree.add("attributes")
        for key, value in attrs.items():
            node.add(f"{escape(key)} = {escape(_short(value))}")
    nodes = {"": tree}
    entries = list(report.get("groups", {}).items()) + list(report.get("datasets", {}).items())
    for path, info in sorted(entries, key=lambda e: e[0]):
        parent = nodes.get(path.rsplit("/", 1)[0], tree)
        name = path.rsplit("/", 1)[1]
        extra = "".join(f"  {k}={escape(_short(v))}" for k, v in info["attrs"].items())
        if "shape" not in info:
            nodes[path] = parent.add(f"[blue]{escape(name)}/[/]{extra}")
        else:
            parent.add(f"{escape(name)}  {tuple(info['shape'])} {info['dtype']}{extra}")
    for warning in report.get("warnings", []):
        tree.add(f"[yellow]warning:[/] {escape(warning)}")
    for problem in report["problems"]:
        tree.add(f"[red]problem:[/] {escape(problem)}")
    console.err.print(tree)


def _short(value: Any, limit: int = 80) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
