"""Fixtures of the native smoke tests: private mosquitto brokers
(``scripts/testbroker.py``) for the real native module ``zmqtt._zmqtt``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
for entry in (ROOT / "scripts", ROOT / "python"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from testbroker import TestBroker


@pytest.fixture(scope="module")
def broker() -> Iterator[TestBroker]:
    """A mosquitto with default options, shared by the tests of a module."""
    with TestBroker() as running:
        yield running


@pytest.fixture(scope="module")
def one_in_flight_broker() -> Iterator[TestBroker]:
    """A mosquitto that sends a client one QoS 1/2 message at a time: the next
    goes out only once the previous one is acknowledged."""
    with TestBroker(max_inflight_messages=1) as running:
        yield running
