"""Test set-up: choose the kernel backend before anything imports triton.

With no GPU, `select_backend()` sets TRITON_INTERPRET=1, so every kernel test runs through
Triton's CPU interpreter on small shapes. Each test gets its own empty lab via $INFERLAB_HOME,
so no test ever touches the learner's real lab.
"""

from __future__ import annotations

import pytest

from inferlab.kernels.device import select_backend

BACKEND = select_backend()


@pytest.fixture
def device() -> str:
    """The device kernels run on in this process: "cuda" when compiled, "cpu" when interpreted."""
    return BACKEND.device


@pytest.fixture(autouse=True)
def _isolated_lab(tmp_path, monkeypatch):
    """Point the default lab at a fresh folder for every test."""
    home = tmp_path / "lab-home"
    monkeypatch.setenv("INFERLAB_HOME", str(home))
    return home


def pytest_collection_modifyitems(config, items):
    """Without Triton (macOS), kernel tests are skipped with the reason, not hidden or failed."""
    if BACKEND.triton_available:
        return
    skip = pytest.mark.skip(
        reason="Triton is not installed here (macOS?): run kernel tests in a Linux container"
    )
    for item in items:
        if item.path.name.startswith(("test_kernels_", "test_checker")):
            item.add_marker(skip)
