"""SPEC 1.2 with a real type checker: ``mypy --strict`` accepts the seed page's
examples and the version-typed API (``check_*.py`` here), and rejects version
misuse on a 3.1.1 client, which snippets below provoke without any
``# type: ignore``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PYTHON_DIR = HERE.parents[2] / "python"
CHECKED_FILES = sorted(HERE.glob("check_*.py"))

#: Snippet name → (code inside ``async def snippet() -> None:``, expected mypy error).
MISUSE = {
    "publish_properties_on_311": (
        'await create_client("h").publish("t", b"x", properties=PublishProperties())',
        'Unexpected keyword argument "properties" for "publish" of "MQTTClientV311"  [call-arg]',
    ),
    "auth_on_311": (
        'await create_client("h").auth("SCRAM-SHA-1")',
        '"MQTTClientV311" has no attribute "auth"  [attr-defined]',
    ),
    "request_on_311": (
        'await create_client("h", version="3.1.1").request("svc", b"q")',
        '"MQTTClientV311" has no attribute "request"  [attr-defined]',
    ),
    "subscribe_option_on_311": (
        'create_client("h").subscribe("a", no_local=True)',
        'Unexpected keyword argument "no_local" for "subscribe" of "MQTTClientV311"  [call-arg]',
    ),
    "connect_option_on_311": (
        'create_client("h", receive_maximum=10)',
        'No overload variant of "create_client" matches argument types "str", "int"  [call-overload]',
    ),
    "properties_through_a_v311_annotation": (
        (
            'client: MQTTClientV311 = create_client("h", version="5.0")\n'
            'await client.publish("t", b"x", properties=PublishProperties())'
        ),
        'Unexpected keyword argument "properties" for "publish" of "MQTTClientV311"  [call-arg]',
    ),
    "unknown_version": (
        'create_client("h", version="3.1")',
        'No overload variant of "create_client" matches argument types "str", "str"  [call-overload]',
    ),
    "client_id_positional": (
        'create_client("h", 1883, "my-app")',
        'No overload variant of "create_client" matches argument types "str", "int", "str"  [call-overload]',
    ),
}

SNIPPET_HEADER = """\
from zmqtt import MQTTClientV311, PublishProperties, create_client


async def snippet() -> None:
"""


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """One ``mypy --strict`` run over the check files and every misuse snippet;
    its error lines (notes left out) per file stem."""
    pytest.importorskip("mypy")
    snippets = tmp_path_factory.mktemp("snippets")
    for name, (code, _) in MISUSE.items():
        (snippets / f"misuse_{name}.py").write_text(
            SNIPPET_HEADER + textwrap.indent(code, "    ") + "\n"
        )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--hide-error-context",
            "--no-color-output",
            "--show-error-codes",
            "--no-pretty",
            "--cache-dir",
            str(tmp_path_factory.mktemp("mypy_cache")),
            *map(str, CHECKED_FILES),
            *map(str, sorted(snippets.glob("*.py"))),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "MYPYPATH": str(PYTHON_DIR)},
        check=False,
        timeout=600,
    )
    assert result.returncode in (0, 1), result.stderr + result.stdout
    errors: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        path, _, rest = line.partition(":")
        if ": error: " in rest:
            errors.setdefault(Path(path).stem, []).append(rest)
    return errors


def test_check_files_exist() -> None:
    assert {path.stem for path in CHECKED_FILES} >= {
        "check_seed_examples",
        "check_version_typing",
    }


@pytest.mark.parametrize("path", CHECKED_FILES, ids=lambda path: path.stem)
def test_mypy_strict_accepts(path: Path, mypy_output: dict[str, list[str]]) -> None:
    assert mypy_output.get(path.stem, []) == []


@pytest.mark.parametrize("name", sorted(MISUSE))
def test_mypy_strict_rejects_version_misuse(
    name: str, mypy_output: dict[str, list[str]]
) -> None:
    _, expected = MISUSE[name]
    reported = mypy_output.get(f"misuse_{name}", [])
    assert len(reported) == 1, reported
    assert reported[0].endswith(f"error: {expected}"), reported
