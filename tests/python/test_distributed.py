"""fastocclusion.distributed: whole datasets on Ray actors, everything on the loopback.

The argument checks and the output store need no Ray. The Ray tests (marked ``ray``) share
one local Ray instance (2 CPUs): a .npy file on two workers, resumed, a damaged shard
recomputed; a worker killed in the middle of a shard, retried by Ray; a corrupt image that
fails its own shard only, then the fixed rerun; ``fastocclusion explain --workers`` against
the same command without it, with a worker process killed half-way; and a two-node cluster
simulated in this machine (``ray.cluster_utils.Cluster``).

Oracles. TensorFlow models always see full batches, so their maps are bit-identical however
the inputs are sharded: the CLI's are compared exactly with the single-process run. Eager
PyTorch models compute an explain's last, shorter batch at its own size, and the CPU GEMM
rounds some rows differently at another size: their maps equal, exactly, the single-process
explain of each shard (what every worker must reproduce, retried or not), and the explain of
the whole dataset within float32 rounding.
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

# Ray's addresses on the loopback only (not the machine's outward address): read when Ray is
# first imported, by this process and by every Ray process it starts.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from fastocclusion.distributed import (  # noqa: E402
    ImageFiles,
    explain_dataset,
    load_results,
    read_image,
)
from fastocclusion.distributed.store import OutputStore, file_sha256  # noqa: E402

CLASSES = 4
OPTIONS = {"batch_size": 5, "patch_size": 3, "patch_stride": 2}


# -- no Ray: argument checks and the output store ---------------------------------------


def test_arguments_are_checked_naming_them_before_any_model_call(tmp_path):
    calls = []

    def model_fn():
        calls.append(1)

    data = np.zeros((4, 6, 6, 1), np.float32)
    out = str(tmp_path / "out")
    cases = [
        ({"workers": 0}, ValueError, "workers: 0"),
        ({"shard_size": 1.5}, ValueError, "shard_size"),
        ({"gpus_per_worker": -1}, ValueError, "gpus_per_worker"),
        ({"cpus_per_worker": 0}, ValueError, "cpus_per_worker"),
        ({"max_retries": -1}, ValueError, "max_retries"),
        ({"progress": "yes"}, ValueError, "progress"),
        ({"patch_size": 7}, ValueError, "patch_size: 7"),
        ({"patch_stride": (1, 2, 3, 4)}, ValueError, "patch_stride"),
        ({"edges": "wrap"}, ValueError, "edges"),
        ({"occlusion_value": [1, 2]}, ValueError, "occlusion_value"),
        ({"operator": "nope"}, ValueError, "nope"),
        ({"stride": 2}, TypeError, "stride: is not an option of Occlusion"),
        ({"targets": np.zeros(3, np.int64)}, ValueError, "targets: 3 targets for 4 inputs"),
        ({"targets": -1}, ValueError, "targets: -1"),
        ({"ray_address": 5}, TypeError, "ray_address"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=re.escape(message)):
            explain_dataset(data, model_fn, out, **kwargs)
    with pytest.raises(TypeError, match="model_fn: int is invalid"):
        explain_dataset(data, 3, out)
    with pytest.raises(ValueError, match="dataset: directory .* holds no image files"):
        explain_dataset(str(tmp_path), model_fn, out)
    with pytest.raises(ValueError, match="dataset: .* is neither"):
        explain_dataset(str(tmp_path / "missing.npy"), model_fn, out)
    with pytest.raises(TypeError, match="dataset: int is invalid"):
        explain_dataset(5, model_fn, out)
    with pytest.raises(ValueError, match="dataset: the iterable is empty"):
        explain_dataset(iter([]), model_fn, out)
    assert calls == [] and not os.path.exists(out)


def test_store_writes_shards_atomically_verifies_them_and_refuses_other_settings(tmp_path):
    out = str(tmp_path / "out")
    store = OutputStore(out, {"options": {"patch_size": [3]}})
    maps = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    record = store.write_shard(0, 0, 2, "key0", maps, {"labels": [1, 2], "outputs": [0.5, 0.25]})
    assert record["sha256"] == file_sha256(os.path.join(out, record["file"]))
    assert store.completed(0, "key0")["labels"] == [1, 2]
    assert store.completed(0, "other key") is None  # other inputs: recomputed
    assert not [p for p in Path(out).rglob("*.tmp")]  # temporaries renamed or removed
    with pytest.raises(ValueError, match="out_dir: .* being written by another run"):
        OutputStore(out, {"options": {"patch_size": [3]}})
    store.finish([record], {"status": "complete", "failed": {}})
    store.close()

    results = load_results(out)
    np.testing.assert_array_equal(results.maps, maps)
    np.testing.assert_array_equal(results.labels, [1, 2])

    shard = Path(out) / record["file"]
    damaged = bytearray(shard.read_bytes())
    damaged[-1] ^= 1
    shard.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="out_dir: shards/shard-000000.npy .* damaged"):
        load_results(out)
    again = OutputStore(out, {"options": {"patch_size": [3]}})
    assert again.completed(0, "key0") is None  # checksum mismatch: recomputed
    again.close()
    with pytest.raises(ValueError, match=r"other settings \(options.patch_size: \[3\] there"):
        OutputStore(out, {"options": {"patch_size": [4]}})
    with pytest.raises(ValueError, match="out_dir: .* is not a directory"):
        OutputStore(str(shard), {})


# -- Ray -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_module():
    ray = pytest.importorskip("ray")
    # Test models defined here travel to the workers by value (their module is not
    # importable there).
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    ray.shutdown()


@pytest.fixture
def local_ray(ray_module):
    """One local Ray instance of 2 CPUs for the module (started again after the cluster
    test, which needs its own)."""
    if not ray_module.is_initialized():
        ray_module.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    return ray_module


def _torch_model(seed: int, features: int):
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(features, 8),
        torch.nn.Tanh(),
        torch.nn.Linear(8, CLASSES),
    ).eval()


def _torch_factory(tmp_path: Path, features: int, seed: int = 0):
    """A model factory the workers can import (torch.load of a pickled module) and the
    model itself."""
    import torch

    model = _torch_model(seed, features)
    path = tmp_path / "model.pt"
    torch.save(model, path)
    return functools.partial(torch.load, str(path), weights_only=False), model


def _explain(model, inputs, **options):
    from fastocclusion import Occlusion

    return np.asarray(Occlusion(model, **options).explain(inputs)).astype(np.float32)


def _per_shard(model, inputs, shard_size, **options):
    return np.concatenate(
        [
            _explain(model, inputs[i : i + shard_size], **options)
            for i in range(0, len(inputs), shard_size)
        ]
    )


def _check_torch_maps(maps, model, inputs, shard_size, **options):
    np.testing.assert_array_equal(maps, _per_shard(model, inputs, shard_size, **options))
    np.testing.assert_allclose(maps, _explain(model, inputs, **options), rtol=0, atol=1e-6)


@pytest.mark.ray
@pytest.mark.torch
def test_npy_file_on_two_workers_then_resumed(local_ray, tmp_path):
    import torch

    inputs = np.random.default_rng(0).uniform(size=(11, 3, 7, 7)).astype(np.float32)
    np.save(tmp_path / "inputs.npy", inputs)
    model_fn, model = _torch_factory(tmp_path, 3 * 7 * 7)
    options = {**OPTIONS, "data_format": "channels_first"}
    out = tmp_path / "out"
    run = functools.partial(explain_dataset, str(tmp_path / "inputs.npy"), model_fn, out)
    summary = run(workers=2, shard_size=3, **options)
    assert summary.complete and not summary.failed
    assert (summary.samples, summary.shards, summary.shards_skipped) == (11, 4, 0)
    assert len(summary.workers) == 2 and sum(w.samples for w in summary.workers) == 11
    # per shard: one outputs call (top class) and the explain's base pass and 9 windows each
    assert summary.model_calls == sum(1 + 1 + -(-n * 9 // 5) for n in (3, 3, 3, 2))
    results = load_results(out)
    _check_torch_maps(results.maps, model, inputs, 3, **options)
    with torch.inference_mode():
        outputs = model(torch.from_numpy(inputs)).numpy()
    np.testing.assert_array_equal(results.labels, outputs.argmax(axis=1))
    np.testing.assert_allclose(results.outputs, outputs.max(axis=1), rtol=1e-6)

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and len(manifest["shards"]) == 4

    # The same run again: every shard verified and skipped, no worker started.
    summary = run(workers=2, shard_size=3, **options)
    assert (summary.samples, summary.shards_skipped, summary.model_calls) == (0, 4, 0)
    assert summary.complete and summary.workers == []

    # A damaged shard is recomputed (and only it).
    shard = out / "shards" / "shard-000002.npy"
    shard.write_bytes(shard.read_bytes()[:-4] + b"\0\0\0\0")
    summary = run(shard_size=3, **options)  # one worker is enough (not a setting of the maps)
    assert (summary.shards, summary.shards_skipped, summary.samples) == (1, 3, 3)
    np.testing.assert_array_equal(load_results(out).maps, results.maps)

    # Other settings in the same directory are refused, before any model call.
    with pytest.raises(ValueError, match=r"out_dir: .*other settings \(options.patch_size"):
        run(shard_size=3, **{**options, "patch_size": 2})


class KillOnce:
    """A model (wrapping a torch module) whose process kills itself (SIGKILL) in the middle
    of its ``at``-th call, once per run: the first process to create ``sentinel`` dies."""

    def __init__(self, model_fn, sentinel: str, at: int) -> None:
        import torch

        class Wrapped(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner, self.calls = inner, 0

            def forward(self, x):
                self.calls += 1
                if self.calls == at:
                    try:
                        os.close(os.open(sentinel, os.O_CREAT | os.O_EXCL))
                    except FileExistsError:
                        pass
                    else:
                        os.kill(os.getpid(), signal.SIGKILL)
                return self.inner(x)

        self.model = Wrapped(model_fn())

    @staticmethod
    def factory(model_fn, sentinel: str, at: int):
        return KillOnce(model_fn, sentinel, at).model


@pytest.mark.ray
@pytest.mark.torch
def test_a_worker_killed_mid_shard_is_retried_and_nothing_is_lost(local_ray, tmp_path):
    inputs = np.random.default_rng(1).uniform(size=(12, 6, 6, 2)).astype(np.float32)
    model_fn, model = _torch_factory(tmp_path, 6 * 6 * 2)
    sentinel = str(tmp_path / "killed")
    factory = functools.partial(KillOnce.factory, model_fn, sentinel, 9)
    items = (x for x in inputs)  # an iterable of arrays, read by the driver
    summary = explain_dataset(
        items, factory, tmp_path / "out", workers=2, shard_size=2, progress=False, **OPTIONS
    )
    assert os.path.exists(sentinel)  # a worker died in the middle of a shard
    assert summary.complete and not summary.failed and summary.samples == 12
    restarted = [w for w in summary.workers if len(w.pids) == 2]
    assert len(restarted) == 1, [str(w) for w in summary.workers]
    _check_torch_maps(load_results(tmp_path / "out").maps, model, inputs, 2, **OPTIONS)


def _save_png(path: Path, rng: np.random.Generator, size=(9, 8)) -> None:
    from PIL import Image

    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)


@pytest.mark.ray
@pytest.mark.torch
def test_a_corrupt_image_fails_its_shard_only_and_the_fixed_rerun_completes(local_ray, tmp_path):
    rng = np.random.default_rng(2)
    images = tmp_path / "images"
    images.mkdir()
    for i in range(7):
        _save_png(images / f"img{i}.png", rng)
    (images / "img4.png").write_bytes(b"not a png")
    (images / "notes.txt").write_text("not an image: ignored")
    model_fn, model = _torch_factory(tmp_path, 9 * 8 * 3)
    out = tmp_path / "out"
    run = functools.partial(explain_dataset, images, model_fn, out, shard_size=2, progress=False)
    summary = run(workers=2, **OPTIONS)
    assert not summary.complete and summary.samples == 5
    assert list(summary.failed) == ["shard 2 (img4.png .. img5.png)"]
    assert "img4.png" in summary.failed["shard 2 (img4.png .. img5.png)"]
    assert "not a readable image" in str(summary)
    assert json.loads((out / "manifest.json").read_text())["status"] == "incomplete"
    with pytest.raises(ValueError, match="is not complete"):
        load_results(out)

    _save_png(images / "img4.png", rng)  # fixed: only its shard runs again
    summary = run(**OPTIONS)  # on one worker
    assert summary.complete and (summary.shards, summary.shards_skipped) == (1, 3)
    inputs = np.stack([read_image(str(images / f"img{i}.png")) for i in range(7)])
    _check_torch_maps(load_results(out).maps, model, inputs, 2, **OPTIONS)
    # An explicit list with its own preprocessing: another run, its own directory.
    listed = ImageFiles(tuple(str(images / f"img{i}.png") for i in (6, 0)), size=(9, 8))
    summary = explain_dataset(listed, model_fn, tmp_path / "listed", progress=False, **OPTIONS)
    np.testing.assert_array_equal(
        load_results(tmp_path / "listed").maps[1], load_results(out).maps[0]
    )


def _kill_a_busy_worker(out: Path, killed: list[int], stop: threading.Event) -> None:
    """Once the first shard is written, SIGKILLs one worker process that is inside a shard
    (its process title is 'ray::ShardWorker.explain')."""
    while not stop.is_set() and not list((out / "shards").glob("*.json")):
        time.sleep(0.005)
    while not stop.is_set() and not killed:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(b"ray::ShardWorker.explain"):
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
                return
        time.sleep(0.002)


@pytest.mark.ray
def test_cli_workers_writes_what_explain_writes_with_a_worker_killed(local_ray, tmp_path, capsys):
    keras = pytest.importorskip("keras")
    from fastocclusion.cli import main

    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((10, 10, 3)),
            keras.layers.Conv2D(4, 3, activation="tanh"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.save(tmp_path / "model.keras")
    rng = np.random.default_rng(4)
    (tmp_path / "images").mkdir()
    paths = []
    for i in range(12):
        paths.append(str(tmp_path / "images" / f"photo{i:02d}.png"))
        _save_png(Path(paths[-1]), rng, size=(10 + i, 12))
    common = ["explain", "--model", str(tmp_path / "model.keras")]
    common += ["--patch-size", "2", "--patch-stride", "1", "--batch-size", "4"]
    assert main([*common, "--images", *paths, "--out", str(tmp_path / "plain")]) == 0
    common += ["--images", str(tmp_path / "images")]  # a directory of images goes in
    capsys.readouterr()

    out = tmp_path / "workers"
    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_a_busy_worker, args=(out, killed, stop))
    killer.start()
    try:
        code = main([*common, "--out", str(out), "--workers", "2", "--shard-size", "1"])
    finally:
        stop.set()
        killer.join()
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert len(killed) == 1 and "restarted 1x" in printed, printed
    np.testing.assert_array_equal(
        np.load(out / "maps.npy"), np.load(tmp_path / "plain" / "maps.npy")
    )
    plain = sorted(p.name for p in (tmp_path / "plain").iterdir())
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*plain, "manifest.json", "shards", ".lock"]
    )
    for name in plain:
        if name.endswith(".png"):
            assert (out / name).read_bytes() == (tmp_path / "plain" / name).read_bytes()

    # The same command again: resumed, nothing recomputed, the same outputs.
    assert main([*common, "--out", str(out), "--workers", "2", "--shard-size", "1"]) == 0
    assert "skipped 12 samples in 12 complete shards" in capsys.readouterr().out
    np.testing.assert_array_equal(
        np.load(out / "maps.npy"), np.load(tmp_path / "plain" / "maps.npy")
    )


@pytest.mark.ray
@pytest.mark.torch
def test_two_node_cluster_on_the_loopback(ray_module, tmp_path):
    from ray.cluster_utils import Cluster

    ray_module.shutdown()  # the module's local instance: this test joins a cluster
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    try:
        cluster.add_node(num_cpus=1)
        assert {node.node_ip_address for node in cluster.list_all_nodes()} == {"127.0.0.1"}
        inputs = np.random.default_rng(5).uniform(size=(9, 5, 6)).astype(np.float32)
        model_fn, model = _torch_factory(tmp_path, 5 * 6)
        run = functools.partial(
            explain_dataset, inputs, model_fn, ray_address=cluster.address, progress=False
        )
        summary = run(tmp_path / "out", workers=2, shard_size=2, **OPTIONS)
        assert not ray_module.is_initialized()  # joined for the run only
        assert summary.complete
        assert len({w.node for w in summary.workers}) == 2  # one worker per node
        assert all(w.samples > 0 for w in summary.workers)
        _check_torch_maps(load_results(tmp_path / "out").maps, model, inputs, 2, **OPTIONS)
        # more workers than the cluster's CPUs: refused before any model call
        with pytest.raises(ValueError, match="workers: 3 workers x 1 CPUs is invalid"):
            run(tmp_path / "x", workers=3)
    finally:
        ray_module.shutdown()
        cluster.shutdown()
