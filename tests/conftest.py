"""Shared fixtures. Test data comes from ../shared/data (never downloaded)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ONEEYE_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "SOURCES.md").is_file():
        pytest.fail(f"test data not found at {DATA} (set ONEEYE_DATA)")
    return DATA


@pytest.fixture(scope="session")
def examples(data_dir: Path) -> Path:
    return data_dir / "ageitgey_face_recognition" / "examples"


@pytest.fixture(scope="session")
def lfw(data_dir: Path) -> Path:
    return data_dir / "lfw_dev"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def port() -> int:
    return free_port()
