"""Shared fixtures: every test gets its own empty run store, quiet progress bars and the default step."""

import os

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMGEN_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("MEMGEN_PROGRESS", "off")
    monkeypatch.delenv("MEMGEN_COMPILE", raising=False)  # the device's default (eager on the CPU)
    yield tmp_path / "store"
