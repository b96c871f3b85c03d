"""Fixtures for the test bed's tests; puts scripts/ on the import path so that
the tests can `import testbroker`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from testbroker import TestBroker

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))


@pytest.fixture(scope="session", autouse=True)
def _tools_installed() -> None:
    """mosquitto, its clients and openssl (installed here when root)."""
    from testbroker import ensure_installed

    ensure_installed()


@pytest.fixture
def broker() -> Iterator[TestBroker]:
    """A broker with every mosquitto default, stopped after the test."""
    from testbroker import TestBroker

    with TestBroker() as started:
        yield started
