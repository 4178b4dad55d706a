"""The README's promises: its two commands and its first code example, run as written."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_text() -> str:
    if not README.is_file():  # tests run against an installed wheel, without the sources
        pytest.skip(f"README.md is not beside the tests ({README})")
    return README.read_text(encoding="utf-8")


def first_python_block() -> str:
    match = re.search(r"```python\n(.*?)```", readme_text(), re.DOTALL)
    assert match, "README.md has no python code block"
    return match.group(1)


def test_readme_commands_come_first_and_need_no_system_package():
    commands = re.findall(r"^    (\S.*)$", readme_text(), re.MULTILINE)[:2]
    assert commands == [
        'pip install ".[tensorflow,plot]" && fastocclusion demo',
        'pip install ".[test]" && python -m pytest',
    ]


@pytest.mark.slow
def test_the_first_example_runs_as_written_and_shows_a_real_map(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(first_python_block(), str(README), "exec"), namespace)  # noqa: S102
    # The printed pointing score: the maps' peaks lie on the objects, not a blank map.
    match = re.search(r"map peaks on the object: ([0-9.]+)", printed.getvalue())
    assert match, printed.getvalue()
    assert float(match.group(1)) >= 0.75
    maps = np.asarray(namespace["maps"])
    assert maps.shape == (8, 32, 32, 1) and maps.dtype == np.float32
    masks = namespace["masks"]
    inside = np.abs(maps[..., 0][masks]).mean()
    outside = np.abs(maps[..., 0][~masks]).mean()
    assert inside > 5 * outside > 0  # the evidence lies on the objects
    assert os.path.getsize(tmp_path / "maps.png") > 1000


@pytest.mark.slow
def test_the_keras_callback_example_runs_as_written(tmp_path, monkeypatch):
    """The README's training-callback example: two epochs, maps and costs logged."""
    pytest.importorskip("matplotlib")
    blocks = re.findall(r"```python\n(.*?)```", readme_text(), re.DOTALL)
    block = next(b for b in blocks if "fastocclusion.keras import OcclusionCallback" in b)
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(block, str(README), "exec"), {})  # noqa: S102
    assert re.search(r"% of the epoch.*% of the epoch", printed.getvalue()), printed.getvalue()
    logs = tmp_path / "logs" / "occlusion"
    assert (logs / "occlusion_maps_epoch_0002.npy").is_file()
    assert any(p.name.startswith("events.out.tfevents") for p in logs.iterdir())


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated")
@pytest.mark.filterwarnings("ignore:.*does not have many workers")
@pytest.mark.filterwarnings("ignore:.*is smaller than the logging interval")
def test_the_lightning_callback_example_runs_as_written(tmp_path, monkeypatch):
    """The README's Lightning example: two epochs, the grids in TensorBoard's event file."""
    pytest.importorskip("lightning", reason='needs Lightning: pip install ".[lightning]"')
    pytest.importorskip("matplotlib")
    blocks = re.findall(r"```python\n(.*?)```", readme_text(), re.DOTALL)
    block = next(b for b in blocks if "fastocclusion.lightning import OcclusionCallback" in b)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, str(README), "exec"), namespace)  # noqa: S102
    assert [c.epoch for c in namespace["callback"].costs] == [0, 1]
    run = tmp_path / "logs" / "lightning" / "lightning_logs" / "version_0"
    assert (run / "occlusion_maps_epoch_0002.npy").is_file()
    assert any(p.name.startswith("events.out.tfevents") for p in run.iterdir())
