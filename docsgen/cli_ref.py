"""The CLI reference: every ``salesflow`` command, from the Typer app itself (``cli/main.py`` ``app``)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import typer
from typer._click import Context  # Typer 0.29 ships its own click

from docsgen.markdown import code, generated_note, table


def command_tree() -> Any:
    """The live (click) command tree behind ``salesflow``."""
    from salesflow.cli.main import app

    return typer.main.get_command(app)


def is_group(command: Any) -> bool:
    return hasattr(command, "list_commands")


def commands(group: Any = None, prefix: str = "salesflow") -> Iterator[tuple[str, Any]]:
    """Every command and group, depth first, as (full path, command); hidden ones left out."""
    group = group or command_tree()
    context = Context(group, info_name=prefix)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if command is None or command.hidden:
            continue
        path = f"{prefix} {name}"
        yield path, command
        if is_group(command):
            yield from commands(command, path)


def _type_name(param: Any) -> str:
    annotation = param.type_descriptor.annotation
    return code(getattr(annotation, "__name__", None) if isinstance(annotation, type) else str(annotation))


def _parameter(param: Any) -> tuple[str, str, str, str]:
    if param.param_type_name == "option":
        names = ", ".join(code(n) for n in (*param.opts, *param.secondary_opts))
        empty = param.default in (None, [], ()) or (param.is_flag and param.default is False)
        return names, _type_name(param), "" if empty else code(param.default), param.help or ""
    required = "required" if param.required else ""
    return code(param.name.upper()), _type_name(param), required, getattr(param, "help", None) or "argument"


def _usage(path: str, command: Any) -> str:
    context = Context(command, info_name=path)
    pieces = command.collect_usage_pieces(context)
    return f"{path} {' '.join(pieces)}".strip()


def render_command(path: str, command: Any) -> str:
    """One command's section: usage, help and a table of its arguments and options."""
    depth = path.count(" ")
    help_text = inspect.cleandoc(command.help or command.short_help or "")
    parts = [f"{'#' * min(depth + 1, 4)} `{path}`\n\n", f"```\n{_usage(path, command)}\n```\n\n", f"{help_text}\n\n"]
    params = [_parameter(p) for p in command.params if not getattr(p, "hidden", False) and p.name != "help"]
    if params:
        parts.append(table(["argument or option", "type", "default", "what it does"], params) + "\n")
    return "".join(parts)


def render() -> str:
    """The whole page."""
    group = command_tree()
    parts = [
        "# CLI: `salesflow`\n\n",
        generated_note("docsgen/cli_ref.py"),
        f"{inspect.cleandoc(group.help or '')}\n\n",
        "Every command takes `--help`. Settings come from the environment ([Settings](settings.md)).\n\n",
    ]
    parts += [render_command(path, command) for path, command in commands(group)]
    return "".join(parts)
