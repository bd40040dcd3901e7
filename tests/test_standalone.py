"""The repository stands alone: no code path reads beside it, in this process or in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.nlp.training_data import load_all_examples
from tests.conftest import REPO_ROOT
from tests.repo_guard import ReadOutsideRepository, is_beside

SIBLING = REPO_ROOT.parent / "shared" / "data" / "taxonomy.json"


@pytest.mark.parametrize(
    ("path", "beside"),
    [
        (str(REPO_ROOT.parent / "shared" / "data"), True),
        (str(REPO_ROOT / ".." / "shared"), True),
        (str(REPO_ROOT.parent / (REPO_ROOT.name + "-other")), True),
        (str(REPO_ROOT / "knowledge" / "public"), False),
        (str(REPO_ROOT), False),
        ("/tmp/anything", False),
    ],
)
def test_is_beside_tells_a_sibling_from_the_repository(path: str, beside: bool) -> None:
    assert is_beside(path, str(REPO_ROOT)) is beside


def test_this_test_run_is_guarded() -> None:
    with pytest.raises(ReadOutsideRepository):
        SIBLING.read_text(encoding="utf-8")


def test_subprocesses_are_guarded() -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"open({str(SIBLING)!r})"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "outside the repository" in result.stderr


def test_training_data_comes_from_inside_the_repository() -> None:
    sources = {example.source for example in load_all_examples()}
    assert {"team", "bitext", "product_qa"} <= sources


def test_no_source_file_names_a_folder_beside_the_repository() -> None:
    offenders = []
    for path in [*REPO_ROOT.glob("engine/**/*.py"), *REPO_ROOT.glob("evals/**/*.py"), REPO_ROOT / "Makefile"]:
        text = path.read_text(encoding="utf-8")
        if "../shared" in text or '"shared" / "data"' in text or '.parent / "shared"' in text:
            offenders.append(str(Path(path).relative_to(REPO_ROOT)))
    assert offenders == []
