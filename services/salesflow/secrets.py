"""Secrets from files: ``SALESFLOW_<NAME>_FILE`` holds the path of a file whose content is the secret.

Every ``SecretStr`` setting can be given either as ``SALESFLOW_<NAME>`` (the value) or as
``SALESFLOW_<NAME>_FILE`` (a path, as Docker and Kubernetes mount secrets), never both. Errors name
the variable and the path, never the content.
"""

from __future__ import annotations

import os
import types
import typing
from pathlib import Path
from typing import Any, ClassVar

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from salesflow.errors import SecretFileError

MASK = "**********"


def is_secret(annotation: Any) -> bool:
    """True for ``SecretStr`` and ``SecretStr | None``."""
    if annotation is SecretStr:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(is_secret(arg) for arg in typing.get_args(annotation))
    return False


def secret_fields(settings_cls: type[BaseSettings]) -> list[str]:
    """Names of the settings that hold secrets."""
    return [name for name, field in settings_cls.model_fields.items() if is_secret(field.annotation)]


def read_secret_file(variable: str, path: str) -> str:
    """The secret in ``path``, without the trailing newline editors and ``echo`` add."""
    try:
        value = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretFileError(
            f"{variable}: cannot read {path}: {type(exc).__name__}: "
            f"{getattr(exc, 'strerror', None) or 'not UTF-8 text'}"
        ) from None
    value = value.rstrip("\r\n")
    if not value:
        raise SecretFileError(f"{variable}: {path} is empty")
    return value


class SecretFilesSource(PydanticBaseSettingsSource):
    """A settings source that reads ``<prefix><NAME>_FILE`` for every secret setting."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        *,
        given: typing.Iterable[str] = (),
        environ: typing.Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(settings_cls)
        self.prefix = str(settings_cls.model_config.get("env_prefix", ""))
        self.environ = os.environ if environ is None else environ
        self.given = frozenset(given)  # passed to the constructor: those win, no file is read

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = self.variable(field_name)
        path = self.environ.get(variable + "_FILE")
        if path is None:
            return None, field_name, False
        if self.environ.get(variable) is not None:
            raise SecretFileError(f"both {variable} and {variable}_FILE are set: keep one")
        return self.decode(field_name, variable, path, read_secret_file(variable + "_FILE", path))

    def fields(self) -> list[str]:
        """The settings this source reads from files: every secret one."""
        return secret_fields(self.settings_cls)

    def decode(self, field_name: str, variable: str, path: str, content: str) -> tuple[Any, str, bool]:
        """(value, field name, is complex) for a file's content: the secret as it is."""
        return content, field_name, False

    def variable(self, field_name: str) -> str:
        return f"{self.prefix}{field_name}".upper()

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in self.fields():
            if name in self.given:
                continue
            value, _, _ = self.get_field_value(self.settings_cls.model_fields[name], name)
            if value is not None:
                values[name] = value
        return values


def reveal(value: Any) -> Any:
    """The real value behind a ``SecretStr`` (for handing settings to a child process), else ``value``."""
    return value.get_secret_value() if isinstance(value, SecretStr) else value


class FileSecretsSettings(BaseSettings):
    """Settings whose secrets may also come from ``<VAR>_FILE``: that source ranks with the
    environment (both set is an error), above ``.env``. Subclasses pick the source class."""

    files_source: ClassVar[type[SecretFilesSource]] = SecretFilesSource

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        files = cls.files_source(settings_cls, given=getattr(init_settings, "init_kwargs", {}))
        return init_settings, env_settings, files, dotenv_settings, file_secret_settings
