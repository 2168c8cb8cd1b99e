"""The settings reference: every pydantic-settings class of ``salesflow``, found in the source (any
class whose ``model_config`` names an ``env_prefix``), each field with its environment variable, type,
default and the comment that explains it."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from docsgen.markdown import code, generated_note, table

PACKAGE = Path(__file__).resolve().parents[1] / "services" / "salesflow"


@dataclass(frozen=True)
class SettingEntry:
    """One row of the reference: the variable a user sets, and what it does."""

    variable: str
    type: str
    default: str
    description: str


def settings_classes(package: Path = PACKAGE) -> list[type[BaseSettings]]:
    """Every concrete settings class in the package, in path order (found without importing first)."""
    found: list[type[BaseSettings]] = []
    for path in sorted(package.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for name in _classes_with_env_prefix(path.read_text()):
            module = ".".join(("salesflow", *path.relative_to(package).with_suffix("").parts))
            found.append(getattr(importlib.import_module(module.removesuffix(".__init__")), name))
    return found


def _classes_with_env_prefix(source: str) -> Iterator[str]:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and any(
            isinstance(stmt, ast.Assign | ast.AnnAssign) and "env_prefix" in ast.unparse(stmt) for stmt in node.body
        ):
            yield node.name


def entries(cls: type[BaseSettings]) -> list[SettingEntry]:
    """The rows of one settings class, in declaration order."""
    prefix = str(cls.model_config.get("env_prefix", "")).upper()
    comments = field_comments(cls)
    rows = []
    for name, field in cls.model_fields.items():
        description = field.description or comments.get(name, "")
        rows.append(SettingEntry(_variable(prefix, name, field), _type(field), _default(field), description))
    return rows


def _variable(prefix: str, name: str, field: FieldInfo) -> str:
    alias = field.validation_alias
    return alias.upper() if isinstance(alias, str) else f"{prefix}{name.upper()}"


def _type(field: FieldInfo) -> str:
    text = re.sub(r"\b(typing|pydantic\.types|pydantic)\.", "", str(field.annotation))
    text = re.sub(r"<class '([\w.]+)'>", r"\1", text)
    return text.replace("NoneType", "None")


def _default(field: FieldInfo) -> str:
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    if isinstance(value, BaseModel):  # nested settings: their own variables are listed in their section
        return f"`{type(value).__name__}` (its own section)"
    if field.default_factory is not None:
        return code(repr(value))
    if field.default is PydanticUndefined:
        return "required"
    if isinstance(field.default, SecretStr):
        return "(secret)"
    return "unset" if field.default is None else code(repr(field.default))


def field_comments(cls: type[Any]) -> dict[str, str]:
    """Each field's comment: the ``#`` lines right above its declaration, and one at its end."""
    lines = inspect.getsource(cls).splitlines()
    found: dict[str, str] = {}
    for index, line in enumerate(lines):
        match = re.match(r"^    (\w+)\s*:", line)
        if match is None or match.group(1) not in cls.model_fields:
            continue
        above: list[str] = []
        for previous in reversed(lines[:index]):
            if not previous.strip().startswith("#"):
                break
            above.insert(0, previous.strip().lstrip("#").strip())
        inline = line.split("  # ", 1)[1].strip() if "  # " in line else ""
        found[match.group(1)] = " ".join(part for part in (*above, inline) if part)
    return found


def secret_note(cls: type[BaseSettings]) -> str:
    secrets = [name for name, field in cls.model_fields.items() if "SecretStr" in _type(field)]
    if not secrets:
        return ""
    return "Secret settings (`SecretStr`) may instead come from a file named by `<VARIABLE>_FILE`.\n\n"


def render() -> str:
    """The whole page."""
    parts = [
        "# Settings\n\n",
        generated_note("docsgen/settings_ref.py"),
        "Every setting comes from an environment variable or from a `.env` file in the working directory; "
        "`salesflow config show` prints the values in effect, secrets masked.\n\n",
    ]
    for cls in settings_classes():
        doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
        parts.append(f"## `{cls.__module__}.{cls.__name__}`\n\n{doc}\n\n{secret_note(cls)}")
        rows = [(code(e.variable), code(e.type), e.default, e.description) for e in entries(cls)]
        parts.append(table(["variable", "type", "default", "what it does"], rows) + "\n")
    return "".join(parts)
