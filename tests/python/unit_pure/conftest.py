"""Fixtures of the pure-layer unit tests.

``zmqtt`` is imported from ``python/``. When its native module is not built,
the test double ``fake_native`` takes its place in ``sys.modules`` (nothing
real is shadowed then). Either way, every test runs with ``zmqtt._client``
pointed at the test double, so these tests never exercise the native module.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from types import ModuleType

import pytest

from unit_pure import fake_native

PYTHON_DIR = Path(__file__).resolve().parents[3] / "python"
if str(PYTHON_DIR) not in sys.path:
    sys.path.insert(0, str(PYTHON_DIR))


def _native_module_built() -> bool:
    package = PYTHON_DIR / "zmqtt"
    return any((package / f"_zmqtt{suffix}").exists() for suffix in EXTENSION_SUFFIXES)


def _import_zmqtt() -> ModuleType:
    if not _native_module_built() and "zmqtt" not in sys.modules:
        sys.modules["zmqtt._zmqtt"] = fake_native
    import zmqtt

    return zmqtt


_import_zmqtt()


@pytest.fixture(autouse=True)
def native(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The test double, installed as the native module of ``zmqtt._client``."""
    import zmqtt._client

    fake_native.reset()
    monkeypatch.setattr(zmqtt._client, "_native", fake_native)
    yield fake_native
    fake_native.reset()
