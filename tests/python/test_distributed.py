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
import hashlib
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
from PIL import Image

# Ray's addresses on the loopback only (not the machine's outward address): read when Ray is
# first imported, by this process and by every Ray process it starts.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from fastocclusion.distributed import (  # noqa: E402
    ImageFiles,
    explain_dataset,
    load_results,
    read_image,
)
from fastocclusion.distributed.models import file_digest, weights_digest  # noqa: E402
from fastocclusion.distributed.store import (  # noqa: E402
    OutputStore,
    file_sha256,
    writable_directory,
)

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
        ({"incremental": "yes"}, ValueError, "incremental: 'yes' is invalid"),
        ({"incremental": 1}, ValueError, "incremental: 1 is invalid"),
        ({"incremental_threshold": 0}, ValueError, "incremental_threshold: 0 is invalid"),
        ({"incremental_threshold": 1.5}, ValueError, "incremental_threshold: 1.5 is invalid"),
        ({"model_id": ""}, ValueError, "model_id: '' is invalid"),
        ({"model_id": 3}, ValueError, "model_id: 3 is invalid"),
        ({"overwrite": "yes"}, ValueError, "overwrite: 'yes' is invalid"),
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
    store = OutputStore(out, {"options": {"patch_size": [3]}}, "model-a")
    maps = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    record = store.write_shard(0, 0, 2, "key0", maps, {"labels": [1, 2], "outputs": [0.5, 0.25]})
    assert record["sha256"] == file_sha256(os.path.join(out, record["file"]))
    assert store.completed(0, "key0")["labels"] == [1, 2]
    assert store.completed(0, "other key") is None  # other inputs: recomputed
    assert not [p for p in Path(out).rglob("*.tmp")]  # temporaries renamed or removed
    with pytest.raises(ValueError, match="out_dir: .* being written by another run"):
        OutputStore(out, {"options": {"patch_size": [3]}}, "model-a")
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
    again = OutputStore(out, {"options": {"patch_size": [3]}}, "model-a")
    assert again.completed(0, "key0") is None  # checksum mismatch: recomputed
    again.close()
    with pytest.raises(ValueError, match=r"other settings \(options.patch_size: \[3\] there"):
        OutputStore(out, {"options": {"patch_size": [4]}}, "model-a")
    with pytest.raises(ValueError, match="out_dir: .* is not a directory"):
        OutputStore(str(shard), {}, "model-a")


def _store_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_store_refuses_another_models_run_unless_overwrite_which_starts_over(tmp_path):
    out = tmp_path / "out"
    settings = {"options": {"patch_size": [3]}}
    store = OutputStore(str(out), settings, "model-a")
    maps = np.ones((2, 3, 2), np.float32)
    records = [store.write_shard(i, 2 * i, 2 * i + 2, f"key{i}", maps, {}) for i in range(2)]
    store.finish(records, {"status": "complete", "failed": {}})
    store.close()
    (out / "first_occlusion.png").write_bytes(b"the command line's file")
    before = _store_files(out)
    assert json.loads((out / "manifest.json").read_text())["fingerprint"]["model"] == "model-a"

    # Another model: refused naming the directory and how to start over, nothing changed;
    # also when a shard is gone (its maps would be the other model's beside model-a's).
    for _ in range(2):
        with pytest.raises(ValueError) as refused:
            OutputStore(str(out), settings, "model-b")
        message = str(refused.value)
        assert message.startswith(f"out_dir: the maps in {str(out)!r} were made by another")
        assert "('model-a' there, 'model-b' here)" in message and "overwrite=True" in message
        assert _store_files(out) == before
        # the model reported later (by the workers): refused the same way
        late = OutputStore(str(out), settings)
        with pytest.raises(ValueError, match="were made by another model"):
            late.use_model("model-b")
        late.close()
        assert _store_files(out) == before
        (out / "shards" / "shard-000001.npy").unlink(missing_ok=True)
        before = _store_files(out)

    # The same model resumes: the complete shard is trusted, the deleted one is not.
    same = OutputStore(str(out), settings, "model-a")
    assert same.completed(0, "key0") is not None and same.completed(1, "key1") is None
    same.close()

    # overwrite: the shards and manifest of model-a are deleted, the other files kept.
    fresh = OutputStore(str(out), {"options": {"patch_size": [4]}}, "model-b", overwrite=True)
    assert sorted(p.name for p in (out / "shards").iterdir()) == []
    assert (out / "first_occlusion.png").read_bytes() == b"the command line's file"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "running" and manifest["fingerprint"]["model"] == "model-b"
    assert fresh.completed(0, "key0") is None
    fresh.close()


def test_store_treats_a_manifest_without_a_model_as_another_models(tmp_path):
    out = tmp_path / "out"
    settings = {"options": {"patch_size": [3]}}
    store = OutputStore(str(out), settings, "model-a")
    record = store.write_shard(0, 0, 1, "key0", np.ones((1, 2), np.float32), {})
    store.finish([record], {"status": "complete", "failed": {}})
    store.close()
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["fingerprint"]["model"]  # as versions before the model was recorded wrote it
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError) as refused:
        OutputStore(str(out), settings, "model-a")
    message = str(refused.value)
    assert f"out_dir: the maps in {str(out)!r}" in message
    assert "did not record the model" in message and "treated as another model's" in message
    assert "overwrite=True" in message
    fresh = OutputStore(str(out), settings, "model-a", overwrite=True)
    assert fresh.completed(0, "key0") is None and not (out / "shards" / "shard-000000.npy").exists()
    fresh.close()


def test_out_dir_under_a_file_or_unwritable_is_a_value_error_naming_it(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("")
    under = a_file / "out"
    with pytest.raises(ValueError) as refused:
        writable_directory(under, "out_dir")
    assert str(refused.value).startswith(f"out_dir: {str(under)!r} could not be created")
    assert "expected a writable directory" in str(refused.value)
    with pytest.raises(ValueError, match="out_dir: .* could not be created or written"):
        OutputStore(str(under), {}, "model-a")
    with pytest.raises(ValueError, match="exists and is not a directory"):
        writable_directory(a_file, "out_dir")
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "shards").write_text("a file where the shards go")
    with pytest.raises(ValueError, match="out_dir: .*shards' exists and is not a directory"):
        OutputStore(str(tmp_path / "ok"), {}, "model-a")
    created = writable_directory(tmp_path / "new" / "deeper", "out_dir")
    assert created == str(tmp_path / "new" / "deeper") and os.listdir(created) == []


def test_file_digest_of_a_model_file_and_of_a_directory_model(tmp_path):
    model = tmp_path / "model.keras"
    model.write_bytes(b"weights v1")
    digest = file_digest(str(model), "--model")
    assert digest == "file-sha256:" + hashlib.sha256(b"weights v1").hexdigest()  # = sha256sum
    (tmp_path / "copy.keras").write_bytes(b"weights v1")
    assert file_digest(str(tmp_path / "copy.keras"), "--model") == digest  # content only
    model.write_bytes(b"weights v2")
    assert file_digest(str(model), "--model") != digest

    saved = tmp_path / "saved_model"
    (saved / "variables").mkdir(parents=True)
    (saved / "variables" / "variables.data").write_bytes(b"data")
    (saved / "saved_model.pb").write_bytes(b"graph")
    first = file_digest(str(saved), "--model")
    assert re.fullmatch(r"dir-sha256:[0-9a-f]{64}", first)
    same = tmp_path / "copy"
    (same / "variables").mkdir(parents=True)  # created in the other order: same digest
    (same / "saved_model.pb").write_bytes(b"graph")
    (same / "variables" / "variables.data").write_bytes(b"data")
    assert file_digest(str(same), "--model") == first
    (same / "variables" / "variables.data").write_bytes(b"other data")
    assert file_digest(str(same), "--model") != first
    (same / "variables" / "variables.data").write_bytes(b"data")
    (same / "variables" / "variables.data").rename(same / "variables" / "renamed.data")
    assert file_digest(str(same), "--model") != first  # the paths count, not only contents
    with pytest.raises(ValueError, match="--model: .*missing.keras' could not be read"):
        file_digest(str(tmp_path / "missing.keras"), "--model")


@pytest.mark.torch
def test_weights_digest_of_torch_and_keras_models_and_none_without_weights():
    torch = pytest.importorskip("torch")
    first, again, other = _torch_model(0, 6), _torch_model(0, 6), _torch_model(1, 6)
    assert weights_digest(first) == weights_digest(again)
    assert re.fullmatch(r"weights-sha256:[0-9a-f]{64}", weights_digest(first))
    assert weights_digest(other) != weights_digest(first)
    with torch.no_grad():
        again[1].bias[0] += 1e-7  # one weight, the least change
    assert weights_digest(again) != weights_digest(first)
    half = _torch_model(0, 6).to(torch.bfloat16)  # same values rounded: another model
    assert weights_digest(half) not in (None, weights_digest(first))
    assert weights_digest(lambda x: x) is None
    assert weights_digest(np.zeros(3)) is None
    from fastocclusion import TorchCallable

    assert weights_digest(TorchCallable(torch.tanh)) is None  # code, no weights

    keras = pytest.importorskip("keras")

    def keras_model(seed):
        keras.utils.set_random_seed(seed)
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(CLASSES)])

    assert weights_digest(keras_model(0)) == weights_digest(keras_model(0))
    assert weights_digest(keras_model(0)) != weights_digest(keras_model(1))
    assert weights_digest(keras.Sequential([keras.Input((4,)), keras.layers.Flatten()])) is None


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
    path = tmp_path / f"model{seed}.pt"
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
    # per shard: the explain's base pass (which gives the top classes too) and 9 windows each
    assert summary.model_calls == sum(1 + -(-n * 9 // 5) for n in (3, 3, 3, 2))
    results = load_results(out)
    _check_torch_maps(results.maps, model, inputs, 3, **options)
    with torch.inference_mode():
        outputs = model(torch.from_numpy(inputs)).numpy()
    np.testing.assert_array_equal(results.labels, outputs.argmax(axis=1))
    np.testing.assert_allclose(results.outputs, outputs.max(axis=1), rtol=1e-6)

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and len(manifest["shards"]) == 4

    # The same run again: every shard verified and skipped; the workers start (they report
    # the digest of the model they built) but make no model call.
    summary = run(workers=2, shard_size=3, **options)
    assert (summary.samples, summary.shards_skipped, summary.model_calls) == (0, 4, 0)
    assert summary.complete and [w.samples for w in summary.workers] == [0, 0]

    # A damaged shard is recomputed (and only it).
    shard = out / "shards" / "shard-000002.npy"
    shard.write_bytes(shard.read_bytes()[:-4] + b"\0\0\0\0")
    summary = run(shard_size=3, **options)  # one worker is enough (not a setting of the maps)
    assert (summary.shards, summary.shards_skipped, summary.samples) == (1, 3, 3)
    np.testing.assert_array_equal(load_results(out).maps, results.maps)

    # Other settings in the same directory are refused, before any model call.
    with pytest.raises(ValueError, match=r"out_dir: .*other settings \(options.patch_size"):
        run(shard_size=3, **{**options, "patch_size": 2})


class CountCalls:
    """A model (wrapping a torch module) that appends a byte to ``path`` at every call, in
    whichever process calls it: the file's size counts the model calls of a whole run."""

    @staticmethod
    def factory(model_fn, path: str):
        import torch

        class Counted(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, x):
                with open(path, "ab") as file:
                    file.write(b".")
                return self.inner(x)

        return Counted(model_fn())


def _calls(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _random_torch_model(features: int):
    """A model_fn that forgot its seed: another model in every process."""
    return _torch_model(int.from_bytes(os.urandom(4), "little"), features)


@pytest.mark.ray
@pytest.mark.torch
def test_another_model_is_refused_before_any_model_call_unless_overwrite(local_ray, tmp_path):
    inputs = np.random.default_rng(6).uniform(size=(8, 5, 6)).astype(np.float32)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    model_a_fn, _ = _torch_factory(tmp_path / "a", 5 * 6, seed=0)
    model_b_fn, module_b = _torch_factory(tmp_path / "b", 5 * 6, seed=1)
    calls = tmp_path / "calls"
    model_a = functools.partial(CountCalls.factory, model_a_fn, str(calls))
    model_b = functools.partial(CountCalls.factory, model_b_fn, str(calls))
    options = {**OPTIONS, "incremental": False}  # every call through the wrapper's forward
    run = functools.partial(explain_dataset, inputs, shard_size=3, progress=False, **options)
    out = tmp_path / "out"

    summary = run(model_a, out)
    assert summary.complete and summary.model_calls > 0
    assert _calls(calls) == summary.model_calls  # the counter sees every model call
    maps_a = load_results(out).maps
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["fingerprint"]["model"].startswith("weights-sha256:")

    # The same model again: every shard skipped, no model call.
    summary = run(model_a, out)
    assert (summary.shards_skipped, summary.model_calls) == (3, 0) and summary.complete
    done = _calls(calls)
    assert done == manifest["summary"]["model_calls"]

    # Another model: refused naming the directory, before any model call, nothing changed;
    # with a shard deleted too (no mixing of the two models' maps).
    files = _store_files(out)
    for _ in range(2):
        with pytest.raises(ValueError) as refused:
            run(model_b, out)
        message = str(refused.value)
        assert message.startswith(f"out_dir: the maps in {str(out)!r} were made by another")
        assert "overwrite=True" in message
        assert _calls(calls) == done and _store_files(out) == files
        (out / "shards" / "shard-000001.npy").unlink(missing_ok=True)
        files = _store_files(out)

    # overwrite: a fresh run of the other model, equal to one in a new directory.
    summary = run(model_b, out, overwrite=True)
    assert summary.complete and (summary.shards, summary.shards_skipped) == (3, 0)
    fresh = run(model_b, tmp_path / "fresh")
    maps_b = load_results(out).maps
    np.testing.assert_array_equal(maps_b, load_results(tmp_path / "fresh").maps)
    np.testing.assert_array_equal(maps_b, _per_shard(module_b, inputs, 3, **options))
    assert not np.array_equal(maps_b, maps_a)
    assert summary.model_calls == fresh.model_calls
    # and resumed as its own
    before = _calls(calls)
    summary = run(model_b, out)
    assert (summary.shards_skipped, summary.model_calls, _calls(calls)) == (3, 0, before)

    # Workers that build different models (an unseeded model_fn): refused before any call.
    with pytest.raises(ValueError, match="model_fn: the workers built 2 different models"):
        run(functools.partial(_random_torch_model, 5 * 6), tmp_path / "random", workers=2)
    assert not (tmp_path / "random" / "manifest.json").exists()


def _first_classes(path: str, batch):
    """A model of no weights (wrapped in TorchCallable): its first CLASSES inputs values as
    outputs, a byte appended to ``path`` per call."""
    with open(path, "ab") as file:
        file.write(b".")
    return batch.reshape(len(batch), -1)[:, :CLASSES] * 1.0


def _weightless(path: str):
    from fastocclusion import TorchCallable

    return TorchCallable(functools.partial(_first_classes, path))


@pytest.mark.ray
@pytest.mark.torch
def test_a_model_without_weights_needs_model_id_and_a_bad_item_is_named_once(local_ray, tmp_path):
    inputs = np.random.default_rng(7).uniform(size=(6, 4, 5)).astype(np.float32)
    calls = tmp_path / "calls"
    model_fn = functools.partial(_weightless, str(calls))
    run = functools.partial(explain_dataset, shard_size=2, progress=False, **OPTIONS)
    out = tmp_path / "out"
    with pytest.raises(ValueError) as refused:
        run(inputs, model_fn, out)
    assert str(refused.value).startswith("model_id: None is invalid for the ")
    assert "TorchCallable" in str(refused.value)
    assert _calls(calls) == 0 and not (out / "manifest.json").exists()

    summary = run(inputs, model_fn, out, model_id="first-classes v1")
    assert summary.complete and _calls(calls) == summary.model_calls > 0
    assert json.loads((out / "manifest.json").read_text())["fingerprint"]["model"] == (
        "first-classes v1"
    )
    done = _calls(calls)
    summary = run(inputs, model_fn, out, model_id="first-classes v1")
    assert (summary.shards_skipped, summary.model_calls, summary.workers) == (3, 0, [])
    with pytest.raises(ValueError, match=r"another model \('first-classes v1' there, 'v2'"):
        run(inputs, model_fn, out, model_id="v2")
    assert _calls(calls) == done

    # A bad item of an iterable: reported once under "dataset", its message not prefixed
    # again (was "dataset: dataset: an item of shape ...").
    items = [*inputs[:4], np.zeros((3, 3), np.float32), inputs[5]]
    summary = run(iter(items), model_fn, tmp_path / "items", model_id="first-classes v1")
    assert not summary.complete and summary.samples == 4
    assert summary.failed == {
        "dataset": "an item of shape (3, 3) is invalid, expected the first item's shape (4, 5)"
    }
    assert "failed: dataset: an item of shape (3, 3)" in str(summary)
    assert "dataset: dataset:" not in str(summary)
    # a non-numeric item: the same (a ValueError of the dataset, not a TypeError of the run)
    items = [*inputs[:2], np.array(["a", "b"]), inputs[3]]
    summary = run(iter(items), model_fn, tmp_path / "text", model_id="first-classes v1")
    assert list(summary.failed) == ["dataset"] and summary.samples == 2
    assert summary.failed["dataset"].startswith("dtype <U1 is invalid")


@pytest.mark.ray
def test_an_out_dir_under_a_file_is_refused_before_any_model_call(ray_module, tmp_path):
    calls = []

    def model_fn():
        calls.append(1)

    (tmp_path / "file.txt").write_text("")
    out = tmp_path / "file.txt" / "out"
    data = np.zeros((4, 6, 6, 1), np.float32)
    with pytest.raises(ValueError) as refused:
        explain_dataset(data, model_fn, out, patch_size=2)
    assert str(refused.value).startswith(f"out_dir: {str(out)!r} could not be created")
    assert calls == []


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
def assert_same_maps(out, plain):
    """The maps of a Ray run equal a plain run's to float32 round-off: the workers run the
    model with one thread, the plain run with two, and on some CPUs oneDNN's convolutions
    round the last bit differently with the thread count (seen: 1.2e-7 on values ~0.1)."""
    reference = np.load(plain / "maps.npy")
    np.testing.assert_allclose(
        np.load(out / "maps.npy"), reference, rtol=0, atol=1e-6 * np.abs(reference).max()
    )


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
    assert_same_maps(out, tmp_path / "plain")
    plain = sorted(p.name for p in (tmp_path / "plain").iterdir())
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*plain, "manifest.json", "shards", ".lock"]
    )
    for name in plain:
        if name.endswith(".png"):  # the same overlays, to the maps' round-off
            ours, theirs = (np.asarray(Image.open(d / name)) for d in (out, tmp_path / "plain"))
            assert ours.shape == theirs.shape
            assert np.mean(np.any(ours != theirs, axis=-1)) < 0.01, name

    # The same command again: resumed, nothing recomputed, the same outputs.
    assert main([*common, "--out", str(out), "--workers", "2", "--shard-size", "1"]) == 0
    assert "skipped 12 samples in 12 complete shards" in capsys.readouterr().out
    assert_same_maps(out, tmp_path / "plain")


@pytest.mark.ray
def test_cli_workers_refuses_another_model_file_and_overwrite_starts_over(
    local_ray, tmp_path, capsys
):
    keras = pytest.importorskip("keras")
    from fastocclusion.cli import main

    for seed in (5, 6):
        keras.utils.set_random_seed(seed)
        keras.Sequential(
            [keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(3)]
        ).save(tmp_path / f"model{seed}.keras")
    rng = np.random.default_rng(8)
    (tmp_path / "images").mkdir()
    for i in range(4):
        _save_png(tmp_path / "images" / f"img{i}.png", rng, size=(8, 8))
    common = ["explain", "--images", str(tmp_path / "images"), "--patch-size", "3"]
    common += ["--batch-size", "4"]
    model_a = ["--model", str(tmp_path / "model5.keras")]
    model_b = ["--model", str(tmp_path / "model6.keras")]
    assert main([*common, *model_b, "--out", str(tmp_path / "plain_b")]) == 0
    out = tmp_path / "out"
    workers = ["--out", str(out), "--workers", "1", "--shard-size", "1"]
    assert main([*common, *model_a, *workers]) == 0
    maps_a = np.load(out / "maps.npy")
    capsys.readouterr()

    # Another model file: exit 2 in one line naming DIR and --overwrite, before any worker
    # starts; nothing in DIR changes, also with a shard deleted (no mixing of two models).
    files = _store_files(out)
    for _ in range(2):
        assert main([*common, *model_b, *workers]) == 2
        printed = capsys.readouterr()
        assert printed.out == "" and printed.err.count("\n") == 1, printed
        assert printed.err.startswith(
            f"fastocclusion explain: error: --out: the maps in {str(out)!r} were made by "
            "another model ('file-sha256:"
        )
        assert "or --overwrite to delete it and start over" in printed.err
        assert _store_files(out) == files
        (out / "shards" / "shard-000002.npy").unlink(missing_ok=True)
        files = _store_files(out)

    # --overwrite: the other model's maps, as the plain run writes them.
    assert main([*common, *model_b, *workers, "--overwrite"]) == 0
    assert "skipped 0 samples in 0 complete shards" in capsys.readouterr().out
    maps_b = np.load(out / "maps.npy")
    np.testing.assert_array_equal(maps_b, np.load(tmp_path / "plain_b" / "maps.npy"))
    assert not np.array_equal(maps_b, maps_a)
    # The same model again: resumed, no worker started, no model call.
    assert main([*common, *model_b, *workers]) == 0
    printed = capsys.readouterr().out
    assert "skipped 4 samples in 4 complete shards" in printed and "\n0 model calls" in printed
    assert main([*common, *model_a, *workers]) == 2  # model_a is the other one now
    assert "were made by another model" in capsys.readouterr().err


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
