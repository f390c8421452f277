"""The lock files pin exactly what pyproject.toml declares, so a fresh clone installs one tree."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;#]+)")


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = PIN.match(line.strip())
        if match:
            pins[_name(match.group(1))] = match.group(2)
    return pins


def test_every_declared_dependency_is_pinned_alike_in_the_lock_files() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    main = _pins(project["dependencies"])
    dev = _pins(project["optional-dependencies"]["dev"])
    assert len(main) == len(project["dependencies"]), "every dependency is pinned with =="
    locked = _pins((ROOT / "requirements.lock").read_text().splitlines())
    locked_dev = _pins((ROOT / "requirements-dev.lock").read_text().splitlines())
    for name, version in main.items():
        assert locked.get(name) == version, f"{name} in requirements.lock: run `make lock`"
        assert locked_dev.get(name) == version, f"{name} in requirements-dev.lock: run `make lock`"
    for name, version in dev.items():
        assert locked_dev.get(name) == version, f"{name} in requirements-dev.lock: run `make lock`"
    assert set(locked) <= set(locked_dev)
