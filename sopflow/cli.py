"""The `sopflow` command: validate and draw SOPs (and, as the product grows, serve them)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from engine.domain.diagram import mermaid
from engine.domain.errors import DefinitionError
from engine.domain.validator import load_file, sop_files


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sopflow")
def main() -> None:
    """Run Indonesian public services by their SOPs."""


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check SOP files or folders; print each problem as file:line:column: message."""
    files = problems = 0
    for path in paths:
        if path.is_dir() and not any(sop_files([path])):
            click.echo(f"{path}: no SOP files (*.yaml, *.yml) in this folder")
            problems += 1
    for path in sop_files(paths):
        files += 1
        try:
            load_file(path)
        except DefinitionError as e:
            problems += len(e.problems)
            for problem in e.problems:
                click.echo(problem.render(e.source))
    summary = f"{files} file{'s' * (files != 1)} checked, "
    summary += f"{problems} problem{'s' * (problems != 1)}" if problems else "all valid"
    click.echo(summary, err=True)
    sys.exit(1 if problems else 0)


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
def diagram(file: Path) -> None:
    """Print the Mermaid state diagram of an SOP."""
    try:
        sop = load_file(file)
    except DefinitionError as e:
        for problem in e.problems:
            click.echo(problem.render(e.source), err=True)
        sys.exit(1)
    click.echo(mermaid(sop))
