"""The ``fastocclusion`` command line (help, version, explain, demo) and the demo's pieces.

``explain`` is checked end to end against an independent reference: the same images,
loaded and resized with Pillow as documented, occluded patch by patch with NumPy and scored
by one ``model.predict`` call.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastocclusion
from fastocclusion.cli import main

keras = pytest.importorskip("keras")
Image = pytest.importorskip("PIL.Image")

SIZE = 12  # the tiny model's input: 12x12 RGB
CLASSES = 3


# -- help, version, light import ----------------------------------------------------------


def test_help_lists_the_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "demo" in out and "explain" in out and "usage: fastocclusion" in out
    assert main(["explain", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in (
        "--model",
        "--images",
        "--patch-size",
        "--patch-stride",
        "--target",
        "--batch-size",
        "--occlusion-value",
        "--edges",
        "--reduction",
        "--out",
        "--scale",
        "--overwrite",
    ):
        assert flag in out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"fastocclusion {fastocclusion.__version__}"


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: fastocclusion" in capsys.readouterr().out


def test_import_is_light_and_python_m_works():
    code = (
        "import sys, fastocclusion.cli; "
        "print(sorted(m for m in ('tensorflow', 'keras', 'matplotlib', 'PIL') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
    done = subprocess.run(
        [sys.executable, "-m", "fastocclusion", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"fastocclusion {fastocclusion.__version__}"


# -- explain ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny saved Keras model and two PNGs (RGB 20x16, grayscale 12x12)."""
    root = tmp_path_factory.mktemp("cli")
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(CLASSES, activation="softmax"),
        ]
    )
    model_path = root / "tiny.keras"
    model.save(model_path)
    rng = np.random.default_rng(3)
    first, second = root / "first.png", root / "second.png"
    Image.fromarray(rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)).save(first)
    Image.fromarray(rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8), mode="L").save(second)
    return {
        "root": root,
        "model": str(model_path),
        "keras": model,
        "images": [str(first), str(second)],
    }


def _reference_input(path: str) -> np.ndarray:
    """The documented preprocessing: RGB, bilinear resize to the model's size, / 255."""
    with Image.open(path) as image:
        image = image.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.float32) / 255.0


def _reference_map(
    model, x: np.ndarray, label: int, patch: int, stride: int, value: float
) -> np.ndarray:
    """Occlusion by hand (design §1-2): valid anchors, sum of deltas over covering patches."""
    anchors = range(0, SIZE - patch + 1, stride)
    boxes = [(r, c) for r in anchors for c in anchors]
    occluded = np.repeat(x[None], len(boxes), axis=0)
    for k, (r, c) in enumerate(boxes):
        occluded[k, r : r + patch, c : c + patch] = value
    base = model.predict(x[None], verbose=0)[0, label]
    scores = model.predict(occluded, verbose=0)[:, label]
    phi = np.zeros((SIZE, SIZE))
    for (r, c), score in zip(boxes, scores):
        phi[r : r + patch, c : c + patch] += float(base) - float(score)
    return phi


def _explain(files, out, *extra: str) -> int:
    return main(
        [
            "explain",
            "--model",
            files["model"],
            "--images",
            *files["images"],
            "--out",
            str(out),
            *extra,
        ]
    )


def test_explain_matches_a_naive_reference(files, tmp_path, capsys):
    out = tmp_path / "maps"
    assert (
        _explain(
            files,
            out,
            "--patch-size",
            "4",
            "--patch-stride",
            "3",
            "--batch-size",
            "7",
            "--occlusion-value",
            "0.5",
        )
        == 0
    )
    printed = capsys.readouterr().out
    maps = np.load(out / "maps.npy")
    assert maps.shape == (2, SIZE, SIZE) and maps.dtype == np.float32
    model = files["keras"]
    for path, hmap in zip(files["images"], maps):
        x = _reference_input(path)
        outputs = model.predict(x[None], verbose=0)[0]
        label = int(outputs.argmax())
        expected = _reference_map(model, x, label, patch=4, stride=3, value=0.5)
        np.testing.assert_allclose(hmap, expected, atol=1e-5)
        stem = os.path.splitext(os.path.basename(path))[0]
        png = out / f"{stem}_occlusion.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        line = next(line for line in printed.splitlines() if line.startswith(path))
        assert f"class {label} (output {outputs[label]:.4g})" in line  # the explain's base pass
        assert f"max {hmap.max():.4g}" in line and f"min {hmap.min():.4g}" in line
    assert sorted(p.name for p in out.iterdir()) == [
        "first_occlusion.png",
        "maps.npy",
        "second_occlusion.png",
    ]


def test_explain_a_directory_of_images(files, tmp_path, capsys):
    """A directory stands for its image files, sorted by name (the model file is skipped)."""
    assert _explain(files, tmp_path / "listed", "--patch-size", "4") == 0
    command = ["explain", "--model", files["model"], "--images", str(files["root"])]
    assert main([*command, "--out", str(tmp_path / "directory"), "--patch-size", "4"]) == 0
    np.testing.assert_array_equal(
        np.load(tmp_path / "directory" / "maps.npy"), np.load(tmp_path / "listed" / "maps.npy")
    )
    assert sorted(p.name for p in (tmp_path / "directory").iterdir()) == [
        "first_occlusion.png",
        "maps.npy",
        "second_occlusion.png",
    ]


def test_explain_target_edges_reduction_and_scale(files, tmp_path, capsys):
    model = files["keras"]
    inputs = [_reference_input(path) / 2.0 for path in files["images"]]  # --scale 510
    top = model.predict(np.stack(inputs), verbose=0).argmax(axis=1)
    target = next(k for k in range(CLASSES) if k not in top)  # not what the default explains
    common = ["--patch-size", "5", "--patch-stride", "5", "--target", str(target), "--scale", "510"]
    assert _explain(files, tmp_path / "t", *common) == 0
    printed = capsys.readouterr().out
    outputs = model.predict(np.stack(inputs), verbose=0)[:, target]
    for path, output in zip(files["images"], outputs):
        assert f"{path}: class {target} (output {output:.4g})" in printed
    maps = np.load(tmp_path / "t" / "maps.npy")
    for x, hmap in zip(inputs, maps):
        np.testing.assert_allclose(hmap, _reference_map(model, x, target, 5, 5, 0.0), atol=1e-5)
        assert np.all(hmap[10:, :] == 0) and np.all(hmap[:, 10:] == 0)  # valid: 2 uncovered
    # cover: clipped patches reach the last rows and columns; mean divides by coverage
    assert _explain(files, tmp_path / "c", *common, "--edges", "cover", "--reduction", "mean") == 0
    covered = np.load(tmp_path / "c" / "maps.npy")
    np.testing.assert_allclose(covered[:, :10, :10], maps[:, :10, :10], atol=1e-6)
    assert np.all(np.abs(covered[:, 10:, :]).sum(axis=(1, 2)) > 0)


def test_explain_repeated_stems_get_distinct_files(files, tmp_path):
    twin = tmp_path / "other"
    twin.mkdir()
    copy = twin / "first.png"
    copy.write_bytes(Path(files["images"][0]).read_bytes())
    out = tmp_path / "out"
    assert (
        main(
            [
                "explain",
                "--model",
                files["model"],
                "--images",
                files["images"][0],
                str(copy),
                "--patch-size",
                "6",
                "--patch-stride",
                "6",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "first_2_occlusion.png",
        "first_occlusion.png",
        "maps.npy",
    ]
    maps = np.load(out / "maps.npy")
    np.testing.assert_array_equal(maps[0], maps[1])


def _error(capsys, code: int) -> str:
    assert code == 2
    return capsys.readouterr().err


def test_explain_errors_exit_2_naming_the_argument(files, tmp_path, capsys):
    root = files["root"]
    missing = str(tmp_path / "nope.png")
    err = _error(
        capsys,
        main(
            [
                "explain",
                "--model",
                files["model"],
                "--images",
                missing,
                "--out",
                str(tmp_path / "o"),
            ]
        ),
    )
    assert "--images" in err and "nope.png" in err and "does not exist" in err

    (tmp_path / "empty").mkdir()
    err = _error(
        capsys,
        main(["explain", "--model", files["model"], "--images", str(tmp_path / "empty"),
              "--out", str(tmp_path / "o")]),
    )  # fmt: skip
    assert "--images" in err and "empty" in err and "holds no image files" in err

    not_image = tmp_path / "text.png"
    not_image.write_text("not an image")
    err = _error(
        capsys,
        main(
            [
                "explain",
                "--model",
                files["model"],
                "--images",
                str(not_image),
                "--out",
                str(tmp_path / "o"),
            ]
        ),
    )
    assert "--images" in err and "text.png" in err and "not a readable image" in err

    bad_model = tmp_path / "broken.keras"
    bad_model.write_bytes(b"garbage")
    err = _error(
        capsys,
        main(
            [
                "explain",
                "--model",
                str(bad_model),
                "--images",
                *files["images"],
                "--out",
                str(tmp_path / "o"),
            ]
        ),
    )
    assert "--model" in err and "broken.keras" in err and "could not be loaded" in err

    err = _error(
        capsys,
        main(
            [
                "explain",
                "--model",
                str(root / "none.keras"),
                "--images",
                *files["images"],
                "--out",
                str(tmp_path / "o"),
            ]
        ),
    )
    assert "--model" in err and "none.keras" in err

    for target in ("3", "-1"):
        err = _error(
            capsys, _explain(files, tmp_path / "o", "--target", target, "--patch-size", "4")
        )
        assert f"--target: {target} is invalid" in err and "0..2" in err

    err = _error(capsys, _explain(files, tmp_path / "o", "--patch-size", "13"))
    assert "--patch-size: 13" in err and "12x12" in err
    err = _error(
        capsys, _explain(files, tmp_path / "o", "--patch-size", "4", "--patch-stride", "4,20")
    )
    assert "--patch-stride: (4, 20)" in err
    err = _error(capsys, _explain(files, tmp_path / "o", "--patch-size", "0"))
    assert "--patch-size" in err and "expected an integer >= 1" in err
    err = _error(capsys, _explain(files, tmp_path / "o", "--edges", "wrap"))
    assert "--edges" in err and "wrap" in err
    err = _error(capsys, _explain(files, tmp_path / "o", "--occlusion-value", "nan"))
    assert "--occlusion-value" in err
    err = _error(capsys, main(["explain", "--images", *files["images"], "--out", "x"]))
    assert "--model" in err

    a_file = tmp_path / "file"
    a_file.write_text("")
    err = _error(capsys, _explain(files, a_file, "--patch-size", "4"))
    assert "--out" in err and "not a directory" in err
    assert not (tmp_path / "o").exists()  # nothing written on errors


def test_explain_out_under_a_file_fails_in_one_line_before_any_model_call(
    files, tmp_path, capsys, monkeypatch
):
    calls = []
    predict, explain = keras.Model.predict, fastocclusion.Occlusion.explain

    def counted(method):
        def wrapper(*args, **kwargs):
            calls.append(method.__name__)
            return method(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(keras.Model, "predict", counted(predict))
    monkeypatch.setattr(fastocclusion.Occlusion, "explain", counted(explain))
    a_file = tmp_path / "file.txt"
    a_file.write_text("")
    out = a_file / "out"  # unwritable for root too
    for extra in ([], ["--workers", "1"]):
        err = _error(capsys, _explain(files, out, "--patch-size", "4", *extra))
        assert err.startswith(f"fastocclusion explain: error: --out: {str(out)!r} could not be")
        assert "expected a writable directory" in err and err.count("\n") == 1, err
        assert calls == []
    # the counter sees the model calls of a run that goes ahead: the explain alone (its
    # base pass gives the labels and their outputs; no predict of the CLI's own)
    assert _explain(files, tmp_path / "ok", "--patch-size", "4") == 0
    assert calls == ["explain"]


def test_explain_overwrite_is_only_valid_with_workers(files, tmp_path, capsys):
    err = _error(capsys, _explain(files, tmp_path / "o", "--overwrite"))
    assert "--overwrite: is only valid with --workers N" in err
    assert not (tmp_path / "o").exists()


# -- the demo -----------------------------------------------------------------------------


def test_demo_dataset_is_deterministic_and_its_masks_are_the_shapes():
    from fastocclusion.demo import make_dataset

    images, labels, masks = make_dataset(64, np.random.default_rng(5))
    again = make_dataset(64, np.random.default_rng(5))
    np.testing.assert_array_equal(images, again[0])
    np.testing.assert_array_equal(labels, again[1])
    assert images.shape == (64, 32, 32, 1) and images.dtype == np.float32
    assert set(np.unique(labels)) == {0, 1}
    pixels = images[..., 0]
    assert pixels[masks].min() >= 0.6 and pixels[~masks].max() <= 0.4
    for label, mask in zip(labels, masks):
        rows, cols = np.nonzero(mask)
        assert rows.min() > 0 and cols.min() > 0 and rows.max() < 31 and cols.max() < 31
        box = mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert box.shape[0] == box.shape[1] and 9 <= box.shape[0] <= 13
        assert box.all() == (label == 0)  # squares fill their box, discs miss the corners


def test_demo_pointing_hits_against_a_loop():
    from fastocclusion.demo import pointing_hits

    rng = np.random.default_rng(1)
    maps = rng.normal(size=(20, 6, 7, 1))
    masks = rng.uniform(size=(20, 6, 7)) < 0.3
    expected = [masks[i].flat[int(np.argmax(maps[i]))] for i in range(20)]
    np.testing.assert_array_equal(pointing_hits(maps, masks), expected)


def test_last_stats_count_the_model_calls_the_explainer_makes():
    """The demo's time split is Occlusion.last_stats: its call count is what the model sees,
    and its model time is part of the total (never a negative overhead)."""
    tf = pytest.importorskip("tensorflow")
    from fastocclusion import Occlusion

    class Counting(tf.Module):
        def __init__(self):
            super().__init__()
            self.calls = tf.Variable(0, dtype=tf.int64)

        def __call__(self, x):
            self.calls.assign_add(1)
            return tf.stack(
                [tf.reduce_sum(x, axis=[1, 2, 3]), tf.reduce_max(x, axis=[1, 2, 3])], axis=1
            )

    for n, batch in ((3, 5), (2, 64)):
        model = Counting()
        x = np.random.default_rng(0).uniform(size=(n, 9, 9, 1)).astype(np.float32)
        explainer = Occlusion(model, batch_size=batch, patch_size=3, patch_stride=2)
        assert explainer.last_stats is None
        explainer.explain(x)
        stats = explainer.last_stats
        assert int(model.calls.numpy()) == stats.model_calls
        # one base pass (raw outputs: the default targets, and the base scores from them),
        # then the sweep of 16 patches per input
        assert stats.model_calls == -(-n // batch) + -(-(n * 16) // batch)
        assert (
            stats.inputs,
            stats.patches_per_input,
            stats.perturbed_samples,
            stats.batch_size,
        ) == (n, 16, n * 16, batch)
        assert 0 < stats.model_seconds <= stats.total_seconds
        assert stats.overhead_seconds == stats.total_seconds - stats.model_seconds


def test_demo_quick_run(tmp_path, capsys):
    out = tmp_path / "demo.png"
    assert (
        main(["demo", "--samples", "200", "--epochs", "1", "--explain", "4", "--out", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    with Image.open(out) as png:
        assert png.format == "PNG" and png.size[0] > 200
    match = re.search(r"pointing game: ([0-9.]+) \((\d+)/4 .*chance level ([0-9.]+)", printed)
    assert match, printed
    assert float(match.group(1)) == int(match.group(2)) / 4
    assert 0.05 < float(match.group(3)) < 0.2
    assert re.search(r"held-out accuracy [0-9.]+", printed)
    match = re.search(
        r"time: explain ([0-9.]+) s = model calls ([0-9.]+) s \(([0-9.]+)%\) "
        r"\+ fastocclusion ([0-9.]+) s \(([0-9.]+)%\)",
        printed,
    )
    assert match, printed  # no minus sign: the split is measured inside the call
    total, inside, _, rest, _ = map(float, match.groups())
    assert abs(total - inside - rest) <= 0.0015
    assert f"wrote {out}" in printed


@pytest.mark.parametrize("missing", [("PIL",), ("matplotlib",), ("PIL", "matplotlib")])
def test_commands_that_write_pngs_without_the_plot_extra_fail_at_once_in_one_line(
    tmp_path, missing
):
    (tmp_path / "m.keras").write_bytes(b"not read")
    (tmp_path / "a.png").write_bytes(b"not read")
    hide = "; ".join(f"sys.modules[{name!r}] = None" for name in missing)  # as if not installed
    for argv in (
        ["demo", "--out", str(tmp_path / "d.png")],
        [
            "explain",
            "--model",
            str(tmp_path / "m.keras"),
            "--images",
            str(tmp_path / "a.png"),
            "--out",
            str(tmp_path / "maps"),
        ],
    ):
        code = f"import sys; {hide}; from fastocclusion.cli import main; sys.exit(main({argv!r}))"
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr  # no traceback
        names = {"PIL": "Pillow", "matplotlib": "matplotlib"}
        assert lines[0].startswith(f"fastocclusion {argv[0]}: error: writing PNG files needs")
        assert all(names[m] in lines[0] for m in missing)
        assert 'pip install "fastocclusion[plot]"' in lines[0]
        assert not (tmp_path / "d.png").exists() and not (tmp_path / "maps").exists()


@pytest.mark.parametrize("log_level", ["3", "0"])  # 0: TensorFlow's log lines kept
def test_commands_that_need_tensorflow_without_it_fail_at_once_in_one_line(tmp_path, log_level):
    """A Keras model (.keras, .h5) and the demo's CNN need TensorFlow, an optional extra:
    without it (``sys.modules`` holding None, as in test_without_tensorflow), exit 2 and one
    line naming the extra, before any file is read or written."""
    for name in ("m.keras", "m.h5", "a.png"):
        (tmp_path / name).write_bytes(b"not read")
    hide = "; ".join(f"sys.modules[{name!r}] = None" for name in ("tensorflow", "keras"))
    extra = "pip install 'fastocclusion[tensorflow]'"
    explain = ["explain", "--images", str(tmp_path / "a.png"), "--out", str(tmp_path / "maps")]
    runs = [("the demo's Keras CNN", ["demo", "--out", str(tmp_path / "d.png")])]
    runs += [
        ("--model: a Keras model", [*explain, "--model", str(tmp_path / model)])
        for model in ("m.keras", "m.h5")
    ]
    for what, argv in runs:
        code = f"import sys; {hide}; from fastocclusion.cli import main; sys.exit(main({argv!r}))"
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": log_level},
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr == f"fastocclusion {argv[0]}: error: {what} needs TensorFlow: {extra}\n"
        assert not (tmp_path / "d.png").exists() and not (tmp_path / "maps").exists()


def test_demo_prints_no_tensorflow_start_up_lines(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fastocclusion",
            "demo",
            "--samples",
            "64",
            "--epochs",
            "1",
            "--explain",
            "2",
            "--out",
            str(tmp_path / "demo.png"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    assert "pointing game" in done.stdout


def test_demo_errors_exit_2(tmp_path, capsys):
    err = _error(capsys, main(["demo", "--explain", "501"]))
    assert "--explain: 501" in err
    err = _error(capsys, main(["demo", "--out", str(tmp_path / "no" / "such" / "x.png")]))
    assert "--out" in err and "does not exist" in err
    err = _error(capsys, main(["demo", "--epochs", "0"]))
    assert "--epochs" in err
