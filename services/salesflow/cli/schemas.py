"""``salesflow schemas``: the contract's JSON Schema files. ``check`` guards the released versions (CI
runs it in ``make lint``); ``write`` adds the file of a new version."""

from __future__ import annotations

from pathlib import Path

import typer

from salesflow.cli.common import console, err_console

schemas_app = typer.Typer(help="The JSON Schema files of the contract (schemas/): check them, add new ones.")

DIRECTORY = typer.Option(Path("schemas"), "--dir", help="The directory of the released schema files.")


@schemas_app.command("check")
def check(directory: Path = DIRECTORY) -> None:
    """Refuse a change of the code that breaks a released schema in either direction (exit 1)."""
    from salesflow.domain.schema_check import check as check_schemas

    if not directory.is_dir():
        err_console.print(f"error: {directory} is not a directory (--dir)", markup=False, highlight=False)
        raise typer.Exit(2)
    findings = check_schemas(directory)
    for finding in findings:
        (err_console if finding.refused else console).print(str(finding), markup=False, highlight=False, soft_wrap=True)
    refused = sum(f.refused for f in findings)
    files = len(list(directory.rglob("*.json")))
    if refused:
        err_console.print(f"{refused} incompatible change(s); see docs/how-to/change-a-payload.md", highlight=False)
        raise typer.Exit(1)
    console.print(f"{files} released schema files: the code is compatible with each, both ways", highlight=False)


@schemas_app.command("write")
def write(directory: Path = DIRECTORY) -> None:
    """Write the file of each new version (a released file is never rewritten)."""
    from salesflow.domain.schemas import write as write_schemas

    for path in write_schemas(directory):
        console.print(f"wrote {path}", markup=False, highlight=False)
