"""``salesflow slo``: generate the Prometheus rules, PrometheusRule and dashboard from the SLO spec,
and check that the committed files match it."""

from __future__ import annotations

from pathlib import Path

import typer

from salesflow.cli.common import console, err_console

slo_app = typer.Typer(
    help="SLOs as code: rules, alerts and the dashboard from deploy/slo/slos.yaml.", no_args_is_help=True
)

ROOT = typer.Option(Path("."), "--root", help="The repository root the paths are relative to.")
SPEC = typer.Option(None, "--spec", help="The spec file (default: <root>/deploy/slo/slos.yaml).")


def _files(root: Path, spec: Path | None) -> dict[str, str]:
    # Imported here: the generator needs PyYAML, a dev dependency the services do not carry.
    from salesflow.slo import SPEC_PATH, generated_files, load_spec

    return generated_files(load_spec(spec or root / SPEC_PATH))


@slo_app.command()
def generate(root: Path = ROOT, spec: Path | None = SPEC) -> None:
    """Write the generated files; print which ones changed."""
    from salesflow.slo import write

    changed = write(root, _files(root, spec))
    for path in changed:
        console.print(f"wrote      {path}")
    if not changed:
        console.print("up to date")


@slo_app.command()
def check(root: Path = ROOT, spec: Path | None = SPEC) -> None:
    """Exit 1 when a generated file is missing or differs from what the spec generates."""
    from salesflow.slo import drift

    stale = drift(root, _files(root, spec))
    for path in stale:
        err_console.print(f"out of date  {path}")
    if stale:
        err_console.print("run `salesflow slo generate` and commit the result")
        raise typer.Exit(1)
    console.print("generated files are up to date")
