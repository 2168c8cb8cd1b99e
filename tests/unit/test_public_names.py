"""Every public name a salesflow package lists in ``__all__`` resolves: several packages import their
names on first use (``__getattr__``), so a module renamed under them breaks only at the caller."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import salesflow

PACKAGES = sorted(name for _, name, is_package in pkgutil.walk_packages(salesflow.__path__, "salesflow.") if is_package)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    missing = [name for name in getattr(module, "__all__", ()) if getattr(module, name, None) is None]
    assert not missing, f"{package} lists names it cannot give: {missing}"
