"""The site's generated reference has an entry for every setting, command, endpoint, metric, alert,
status and reason the code has (found here independently of the generator), and every shell block of
the tutorial and how-tos is either run in CI or marked with what it needs."""

from __future__ import annotations

import importlib
import re
from enum import StrEnum
from pathlib import Path

import pytest
import typer
import yaml

from docsgen import cli_ref, observability_ref, openapi_ref, reasons_ref, settings_ref, shell_blocks
from docsgen.build import PAGES

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "services" / "salesflow"
SHELL_PAGES = sorted((ROOT / "docs" / "tutorial").glob("*.md")) + sorted((ROOT / "docs" / "how-to").glob("*.md"))


# A class statement, then (before the next class) an env_prefix: a settings class and its prefix.
SETTINGS_CLASS = re.compile(r"^class (\w+)\(.*?(?=^class |\Z)", re.DOTALL | re.MULTILINE)
ENV_PREFIX = re.compile(r'env_prefix="(\w+)"')


def _settings_variables() -> list[str]:
    """Every variable of every class whose source names an ``env_prefix`` (a text search, not the
    generator's AST walk)."""
    variables = []
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(("salesflow", *path.relative_to(PACKAGE).with_suffix("").parts))
        for found in SETTINGS_CLASS.finditer(path.read_text()):
            prefix = ENV_PREFIX.search(found.group(0))
            if prefix and "migrations" not in path.parts:
                cls = getattr(importlib.import_module(module.removesuffix(".__init__")), found.group(1))
                variables += [f"{prefix.group(1)}{field}".upper() for field in cls.model_fields]
    return variables


def test_every_setting_has_an_entry() -> None:
    page = settings_ref.render()
    variables = _settings_variables()
    assert "SALESFLOW_KAFKA_BOOTSTRAP_SERVERS" in variables and "SALESFLOW_OUTBOX_BATCH_SIZE" in variables
    assert [v for v in variables if f"| `{v}` |" not in page] == []


def _command_paths(command: object, path: str) -> list[str]:
    children = getattr(command, "commands", {})
    found = [path]
    for name, child in children.items():
        if not getattr(child, "hidden", False):
            found += _command_paths(child, f"{path} {name}")
    return found


def test_every_command_has_an_entry() -> None:
    from salesflow.cli.main import app

    paths = _command_paths(typer.main.get_command(app), "salesflow")[1:]
    page = cli_ref.render()
    assert {"salesflow worker", "salesflow replay offsets", "salesflow outbox relay"} <= set(paths)
    assert [p for p in paths if f"`{p}`" not in page] == []


def test_every_endpoint_has_an_entry() -> None:
    document = openapi_ref.openapi_document()
    page = openapi_ref.render(document)
    operations = [f"{m.upper()} {p}" for p, item in document["paths"].items() for m in item if m in openapi_ref.METHODS]
    assert "POST /api/events/{event_id}/replay" in operations
    assert [op for op in operations if f"### `{op}`" not in page] == []


@pytest.mark.parametrize("title,enum,where", reasons_ref.enums())
def test_every_status_and_reason_has_an_entry_that_says_what_it_means(
    title: str, enum: type[StrEnum], where: str
) -> None:
    page = reasons_ref.render()
    missing = [m.value for m in enum if not re.search(rf"\| `{m.value}` \| [^|\s]", page)]
    assert missing == [], f"{title}: describe them (a comment beside the member, or docsgen/reasons_ref.py)"


def test_a_member_without_a_description_is_caught() -> None:
    class Made(StrEnum):
        UNEXPLAINED = "never_seen_before"

    assert reasons_ref.description(Made, "never_seen_before") == ""


def test_every_metric_and_alert_has_an_entry() -> None:
    declared = set()
    for path in PACKAGE.rglob("*.py"):
        for kind, name in re.findall(
            r'(Counter|Gauge|Histogram|_counter|_gauge|_histogram)\(\s*(?:\w+,\s*)?"(salesflow_\w+)"', path.read_text()
        ):
            declared.add(name + ("_total" if kind.lstrip("_").lower() == "counter" else ""))
    page = observability_ref.render()
    assert "salesflow_events_processed_total" in declared
    assert [m for m in sorted(declared) if f"`{m}`" not in page] == []
    rules = ROOT / "deploy" / "prometheus" / "rules"
    alerts = {
        r["alert"]
        for f in rules.glob("*.yml")
        for g in yaml.safe_load(f.read_text())["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    assert [a for a in sorted(alerts) if f"(../runbooks/{a}.md)" not in page] == []


def test_every_generated_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    assert [p for p in PAGES if p.endswith(".md") and p not in nav] == []


def test_every_shell_block_runs_in_ci_or_says_what_it_needs() -> None:
    assert SHELL_PAGES and shell_blocks.unmarked_shell_blocks(SHELL_PAGES) == []


def test_blocks_run_by_another_test_name_a_test_that_reads_the_page() -> None:
    for page in SHELL_PAGES:
        for block in shell_blocks.blocks(page):
            if block.marker == "ci" and block.note:
                test = ROOT / block.note.removeprefix("tested by").strip()
                assert test.is_file(), block.where
                assert page.relative_to(ROOT / "docs").as_posix() in test.read_text(), block.where


def test_an_unmarked_shell_block_is_caught(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# A page\n\n<!-- ci -->\n```bash\necho ok\n```\n\n```bash\nrm -rf /\n```\n")
    assert shell_blocks.unmarked_shell_blocks([page]) == [f"{page}:8"]
    assert "echo ok" in shell_blocks.script(page) and "rm -rf" not in shell_blocks.script(page)
