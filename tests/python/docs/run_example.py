"""Runs one Python example of the user guide against a private test broker.

Usage (by ``test_guide_examples.py``, one interpreter per example)::

    python run_example.py <config.json> <example.py> <page.md>

``example.py`` holds the example, preceded by blank lines so that its line
numbers are those of ``page.md``: it is compiled under the page's name, so a
traceback points at the guide's own line.

The examples are written as a reader runs them, against a broker on
``localhost`` port 1883 (8883 for TLS). Before running one, this script wraps
``MQTTClient.__init__`` (which ``create_client()`` calls too) so that the
address and credentials the example names are mapped to the test broker's:

- host: the names in ``config["hosts"]`` (``broker.example.com``) → ``localhost``;
- port: each of ``config["ports"]`` (``1883``, ``8883``) → the matching listener;
- ``username="user"`` / ``password="secret"`` → the broker's own credentials.

Nothing else about the example changes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from zmqtt import MQTTClient

#: What an example writes for the broker's credentials.
EXAMPLE_USERNAME = "user"
EXAMPLE_PASSWORD = "secret"
#: Written to stderr once the example has returned.
COMPLETED = "[run_example] the example completed"


def redirect_clients(config: dict[str, Any]) -> None:
    """Makes every client the example builds talk to the test broker."""
    hosts: dict[str, str] = config["hosts"]
    ports = {int(port): listener for port, listener in config["ports"].items()}
    original = MQTTClient.__init__

    def init(self: MQTTClient, host: str, port: int = 1883, **kwargs: Any) -> None:
        if kwargs.get("username") == EXAMPLE_USERNAME:
            kwargs["username"] = config["username"]
        if kwargs.get("password") == EXAMPLE_PASSWORD:
            kwargs["password"] = config["password"]
        original(self, hosts.get(host, host), ports.get(port, port), **kwargs)

    setattr(MQTTClient, "__init__", init)  # noqa: B010 - mypy refuses assigning a method


def main(argv: list[str]) -> None:
    config_path, example_path, page = argv
    config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    redirect_clients(config)
    source = Path(example_path).read_text(encoding="utf-8")
    code = compile(source, page, "exec")
    exec(code, {"__name__": "__main__", "__file__": page})  # noqa: S102 - running the example is the point
    # Tells a crash after the example (at interpreter exit) from one inside it.
    print(COMPLETED, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
