"""The code examples of the user guide (``docs/guide/*.md``) run here, so that
they cannot rot.

Python
    Every ```` ```python ```` block is a complete program (imports, an
    ``async def main()``, ``asyncio.run(main())``), written for a broker on
    ``localhost`` port 1883 (8883 for TLS), as a reader would run it. Each
    block runs in a fresh interpreter, through ``run_example.py``, against a
    fresh private mosquitto (``scripts/testbroker.py``); ``run_example.py``
    maps the address and the credentials ``"user"`` / ``"secret"`` to that
    broker's, so the text of the example stays as the reader sees it. A block
    passes when its program exits with status 0 (the examples ``assert`` what
    they promise). All of them must also pass ``mypy --strict``, as a reader's
    type-checked code would.

    The words after ``python`` in the fence's info string:

    - ``fragment``: not run, only compiled (top-level ``await`` allowed), so
      it stays valid Python. For code that needs a broker feature mosquitto
      does not have (enhanced authentication): the guide has no other kind.
      (Not ``no-run``: rustdoc, which reads the info strings of every block
      of the pages, warns that it looks like a misspelt ``no_run``.)
    - ``listener:password``: port 1883 leads to the broker's listener that
      requires a user name and password; ``listener:mtls``: port 8883 leads
      to the listener that requires a client certificate.
    - ``deny_subscribe:<level>``: the broker refuses subscriptions to
      ``<level>/#`` (and to filters inside it).
    - any other ``name:value``: a ``TestBroker`` option for that example's
      broker, e.g. ``max_qos:1``, ``retain_available:false``.

    (``name:value`` rather than ``name=value``: rustdoc reads the info string
    of every block of the pages, and warns about ``=``, ``/`` or ``#`` in it.)

    Placeholders replaced in the text: ``/path/to/ca.pem``,
    ``/path/to/client.crt`` and ``/path/to/client.key`` become the test
    broker's CA certificate, client certificate and client key. The
    environment variable ``SSL_CERT_FILE`` names the broker's CA, so that
    ``tls=True`` (the platform's trusted roots) trusts the test broker.

Rust
    The ```` ```rust ```` blocks are doctests of the ``zmqtt`` crate
    (``cargo test -p zmqtt --doc``): ``crates/zmqtt/src/lib.rs`` includes every
    page. They start their broker in one hidden line (``# let broker = ...``).
    ``test_every_page_is_a_doctest`` checks that no page is left out.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from integration.helpers import Broker

REPO = Path(__file__).resolve().parents[3]
GUIDE = REPO / "docs" / "guide"
LIB_RS = REPO / "crates" / "zmqtt" / "src" / "lib.rs"
RUNNER = Path(__file__).resolve().with_name("run_example.py")
SCRIPTS = REPO / "scripts"

#: The pages of the guide, in reading order (README.md is the index).
PAGES = (
    "connecting.md",
    "publishing.md",
    "subscribing.md",
    "acknowledgement.md",
    "reconnection.md",
    "errors.md",
    "mqtt5.md",
    "tls.md",
    "logging.md",
)

#: Seconds one example may run (a few wait for a reconnect or a timeout).
EXAMPLE_TIMEOUT = 90.0

#: What run_example.py writes to stderr once the example has returned, so that
#: a crash at interpreter exit is told from a failure of the example itself.
COMPLETED = "[run_example] the example completed"

_FENCE = re.compile(r"^```(\S*)(.*)$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a guide page."""

    page: str
    #: 1-based line number of the block's first line of code.
    line: int
    language: str
    words: tuple[str, ...]
    code: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def blocks_of(page: str) -> list[Block]:
    """The fenced code blocks of ``docs/guide/<page>``."""
    found: list[Block] = []
    lines = (GUIDE / page).read_text(encoding="utf-8").splitlines()
    opened: tuple[int, str, tuple[str, ...]] | None = None
    body: list[str] = []
    for number, text in enumerate(lines, start=1):
        match = _FENCE.match(text)
        if opened is None:
            if match is not None and match.group(1):
                language, *attributes = match.group(1).split(",")
                words = (*attributes, *match.group(2).split())
                opened = (number + 1, language, words)
                body = []
            continue
        if text.strip() == "```":
            first, language, words = opened
            found.append(Block(page, first, language, words, "\n".join(body) + "\n"))
            opened = None
        else:
            body.append(text)
    assert opened is None, f"{page}: unclosed code block from line {opened[0] - 1}"
    return found


def python_blocks() -> list[Block]:
    return [
        block
        for page in PAGES
        for block in blocks_of(page)
        if block.language == "python"
    ]


def runnable() -> list[Block]:
    return [block for block in python_blocks() if "fragment" not in block.words]


def fragments() -> list[Block]:
    return [block for block in python_blocks() if "fragment" in block.words]


def _option_value(name: str, text: str) -> object:
    if name == "deny_subscribe":
        return (f"{text}/#",)
    if text in ("true", "false"):
        return text == "true"
    if text.isdigit():
        return int(text)
    return text


def broker_setup(block: Block) -> tuple[str, dict[str, object]]:
    """The listener an example's port 1883/8883 leads to, and the options of its broker."""
    listener = "plain"
    options: dict[str, object] = {}
    for word in block.words:
        if word == "fragment":
            continue
        name, colon, value = word.partition(":")
        if not colon:
            raise ValueError(f"{block.id}: unknown word {word!r} in the info string")
        if name == "listener":
            if value not in ("password", "mtls"):
                raise ValueError(f"{block.id}: unknown listener {value!r}")
            listener = value
        else:
            options[name] = _option_value(name, value)
    return listener, options


def _testbroker() -> Any:
    """``scripts/testbroker.py`` (imported at run time: mypy does not see scripts/)."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    return importlib.import_module("testbroker")


@contextlib.contextmanager
def running_broker(options: dict[str, object]) -> Iterator[Broker]:
    broker = cast(Broker, _testbroker().TestBroker(**options).start())
    try:
        yield broker
    finally:
        broker.stop()


def example_source(block: Block, broker: Broker) -> str:
    """The block's code with the placeholders filled, preceded by blank lines so
    that its line numbers are the page's."""
    code = (
        block.code.replace("/path/to/ca.pem", str(broker.ca_file))
        .replace("/path/to/client.crt", str(broker.client_cert))
        .replace("/path/to/client.key", str(broker.client_key))
    )
    return "\n" * (block.line - 1) + code


@pytest.fixture(scope="session", autouse=True)
def _tools_installed() -> None:
    """mosquitto, its clients and openssl (installed here when root)."""
    _testbroker().ensure_installed()


@pytest.mark.parametrize("block", runnable(), ids=lambda block: block.id)
def test_python_example_runs(block: Block, tmp_path: Path) -> None:
    listener, options = broker_setup(block)
    with running_broker(options) as broker:
        plain = broker.password_port if listener == "password" else broker.port
        tls = broker.mtls_port if listener == "mtls" else broker.tls_port
        config = {
            "hosts": {"broker.example.com": "localhost"},
            "ports": {"1883": plain, "8883": tls},
            "username": broker.username,
            "password": broker.password,
        }
        config_path = tmp_path / "config.json"
        config_path.write_text(json.dumps(config), encoding="utf-8")
        example_path = tmp_path / "example.py"
        example_path.write_text(example_source(block, broker), encoding="utf-8")
        env = dict(os.environ, SSL_CERT_FILE=str(broker.ca_file))
        env.pop("SSL_CERT_DIR", None)
        page = f"docs/guide/{block.page}"
        try:
            done = subprocess.run(
                [
                    sys.executable,
                    "-X",
                    "faulthandler",
                    str(RUNNER),
                    str(config_path),
                    str(example_path),
                    page,
                ],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=EXAMPLE_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as expired:
            pytest.fail(
                f"{page} line {block.line}: still running after {EXAMPLE_TIMEOUT} s\n"
                f"{expired.stdout!r}\n{expired.stderr!r}"
            )
    when = (
        "after it completed, at interpreter exit"
        if COMPLETED in done.stderr
        else "while running"
    )
    assert done.returncode == 0, (
        f"{page} line {block.line} failed {when} (exit {done.returncode})\n"
        f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    )


def test_python_examples_pass_mypy_strict(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    files = []
    for block in runnable():
        path = tmp_path / f"{Path(block.page).stem}_{block.line}.py"
        # Line numbers in mypy's messages are the page's.
        path.write_text("\n" * (block.line - 1) + block.code, encoding="utf-8")
        files.append(str(path))
    env = dict(os.environ, MYPYPATH=str(REPO / "python"))
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *files],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, f"{checked.stdout}\n{checked.stderr}"


@pytest.mark.parametrize("block", fragments(), ids=lambda block: block.id)
def test_python_fragment_compiles(block: Block) -> None:
    compile(
        "\n" * (block.line - 1) + block.code,
        f"docs/guide/{block.page}",
        "exec",
        flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
    )


def test_info_strings_are_understood() -> None:
    for block in python_blocks():
        broker_setup(block)
    for page in PAGES:
        for block in blocks_of(page):
            assert block.language in ("python", "rust"), (
                f"{block.id}: a {block.language!r} block would be neither run nor checked"
            )
            if block.language == "rust":
                for word in block.words:
                    assert word in ("no_run", "ignore", "compile_fail") or re.fullmatch(
                        r"E\d{4}", word
                    ), f"{block.id}: unexpected attribute {word!r}"


def test_every_page_shows_python_and_rust() -> None:
    for page in PAGES:
        languages = {block.language for block in blocks_of(page)}
        assert {"python", "rust"} <= languages, f"{page} lacks an example: {languages}"


def test_every_page_is_a_doctest() -> None:
    lib = LIB_RS.read_text(encoding="utf-8")
    for page in PAGES:
        include = f'#[doc = include_str!("../../../docs/guide/{page}")]'
        assert include in lib, f"crates/zmqtt/src/lib.rs does not include {page}"


def _anchors(page: str) -> set[str]:
    """The anchors GitHub makes for the headings of ``page``."""
    anchors: set[str] = set()
    inside_code = False
    for text in (GUIDE / page).read_text(encoding="utf-8").splitlines():
        if text.startswith("```"):
            inside_code = not inside_code
        if inside_code or not text.startswith("#"):
            continue
        title = text.lstrip("#").strip().lower()
        slug = re.sub(r"[^\w\- ]", "", title).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


def test_links_between_pages_resolve() -> None:
    for page in ("README.md", *PAGES):
        text = (GUIDE / page).read_text(encoding="utf-8")
        for target, anchor in re.findall(r"\]\(([\w.-]*\.md|)(?:#([\w-]+))?\)", text):
            linked = target or page
            assert (GUIDE / linked).is_file(), f"{page}: link to missing {linked}"
            if anchor:
                assert anchor in _anchors(linked), f"{page}: no #{anchor} in {linked}"


def test_the_index_links_every_page() -> None:
    index = (GUIDE / "README.md").read_text(encoding="utf-8")
    for page in PAGES:
        assert f"]({page})" in index, f"docs/guide/README.md does not link {page}"
