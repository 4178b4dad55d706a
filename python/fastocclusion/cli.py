"""The ``fastocclusion`` command line: ``demo`` and ``explain``.

Importing this module is light (argparse only): TensorFlow, Keras, Pillow and matplotlib load
inside the commands, so ``fastocclusion --help`` answers at once.

``main(argv)`` returns the exit status instead of exiting (0 success, 2 a usage error: a bad
argument, a missing or unreadable file, a model that cannot be loaded), so it can be called
in-process; the console script and ``python -m fastocclusion`` exit with it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import fastocclusion

#: Images per shard of ``explain --workers`` unless --shard-size says otherwise.
DEFAULT_SHARD_SIZE = 32

#: Pillow mode per channel count of the model's input.
CHANNEL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


class UsageError(Exception):
    """A user error detected after parsing; reported as 'fastocclusion: error: ...', exit 2."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid, expected an integer >= 1")
    return value


def _pair(text: str) -> int | tuple[int, int]:
    """'8' or '8,4' (rows, cols)."""
    parts = text.split(",")
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(f"{text!r} is invalid, expected N or ROWS,COLS")
    values = tuple(_positive_int(p.strip()) for p in parts)
    return values[0] if len(values) == 1 else (values[0], values[1])


def _batch_size(text: str) -> int | None:
    return None if text == "auto" else _positive_int(text)


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is invalid, expected a finite number")
    return value


def _positive_float(text: str) -> float:
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid, expected a number > 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastocclusion",
        description="Occlusion sensitivity maps (Zeiler & Fergus 2014) where the model calls "
        "are the only cost.",
    )
    parser.add_argument(
        "--version", action="version", version=f"fastocclusion {fastocclusion.__version__}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="train a small CNN on synthetic shapes, explain it, check and time it",
        description="Builds a synthetic data set in memory (noise images with one bright "
        "square or disc), trains a small Keras CNN on the CPU, explains held-out "
        "images with Occlusion, prints the pointing-game score against chance and "
        "the time split (model calls vs overhead), and writes a PNG grid of "
        "heatmaps. No downloads.",
    )
    demo.add_argument(
        "--out", default="occlusion_demo.png", help="PNG to write (default: %(default)s)"
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    demo.add_argument(
        "--epochs", type=_positive_int, default=3, help="training epochs (default: %(default)s)"
    )
    demo.add_argument(
        "--samples", type=_positive_int, default=2000, help="training images (default: %(default)s)"
    )
    demo.add_argument(
        "--explain",
        type=_positive_int,
        default=32,
        help="held-out images to explain, at most 500 (default: %(default)s)",
    )
    demo.add_argument(
        "--batch-size",
        type=_positive_int,
        default=64,
        help="perturbed samples per model call (default: %(default)s)",
    )

    explain = commands.add_parser(
        "explain",
        help="occlusion maps of images under a saved Keras model",
        description="Loads a saved Keras model and images, resizes each image to the model's "
        "input size (mode L for 1 channel, RGB for 3, RGBA for 4), divides the "
        "pixel values by --scale (default 255: inputs in [0, 1]), explains them "
        "and writes DIR/<stem>_occlusion.png overlays and DIR/maps.npy (N, H, W).",
    )
    explain.add_argument("--model", required=True, help="a saved Keras model (.keras, .h5)")
    explain.add_argument(
        "--images",
        required=True,
        nargs="+",
        metavar="IMAGE",
        help="image files Pillow can read, or directories of them (their image files, "
        "sorted by name)",
    )
    explain.add_argument("--out", required=True, metavar="DIR", help="output directory")
    explain.add_argument(
        "--patch-size",
        type=_pair,
        default=16,
        metavar="N|R,C",
        help="patch size in pixels (default: %(default)s)",
    )
    explain.add_argument(
        "--patch-stride",
        type=_pair,
        default=8,
        metavar="N|R,C",
        help="patch stride in pixels (default: %(default)s)",
    )
    explain.add_argument(
        "--target",
        type=int,
        default=None,
        metavar="K",
        help="explain class K for every image (default: each image's top class)",
    )
    explain.add_argument(
        "--batch-size",
        type=_batch_size,
        default=32,
        metavar="B|auto",
        help="perturbed samples per model call (default: %(default)s)",
    )
    explain.add_argument(
        "--occlusion-value",
        type=_finite_float,
        default=0.0,
        metavar="V",
        help="baseline value of occluded pixels, in model input units "
        "(after --scale) (default: %(default)s)",
    )
    explain.add_argument(
        "--edges",
        choices=("valid", "cover"),
        default="valid",
        help="valid: only patches inside the image (reference); cover: add "
        "clipped patches so every pixel is covered (default: %(default)s)",
    )
    explain.add_argument(
        "--reduction",
        choices=("sum", "mean"),
        default="sum",
        help="sum over covering patches (reference) or their mean (default: %(default)s)",
    )
    explain.add_argument(
        "--scale",
        type=_positive_float,
        default=255.0,
        help="divide pixel values by this (default: %(default)s; 1 keeps 0..255)",
    )
    explain.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        metavar="N",
        help='explain on N Ray workers (pip install "fastocclusion[ray]"); DIR also gets '
        "the shards and manifest.json, and the same command run again resumes",
    )
    explain.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="with --workers: the Ray cluster to join (default: a local Ray instance)",
    )
    explain.add_argument(
        "--shard-size",
        type=_positive_int,
        default=None,
        metavar="N",
        help=f"with --workers: images per shard, the unit of work and of resume "
        f"(default: {DEFAULT_SHARD_SIZE})",
    )
    explain.add_argument(
        "--overwrite",
        action="store_true",
        help="with --workers: delete the shards and manifest.json of an earlier run in DIR "
        "(another model, other settings) and start over; without it, such a DIR is an "
        "error and one of the same model and settings is resumed",
    )
    return parser


#: What the commands that write PNGs need, by import name: (distribution, what for).
PLOT_EXTRA = {"matplotlib": "matplotlib", "PIL": "Pillow"}


def _require_plot_extra() -> None:
    """Fails at once, in one line, when the modules that write the PNGs are missing (before
    minutes of training or explaining are spent)."""
    missing = []
    for module, distribution in PLOT_EXTRA.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a broken module
            found = False
        if not found:
            missing.append(distribution)
    if missing:
        raise UsageError(
            f"writing PNG files needs {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed: "
            'pip install "fastocclusion[plot]"'
        )


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Sends what native code writes to file descriptor 2 to /dev/null meanwhile (Python's
    own exceptions are raised after it is restored, so they still show)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _options(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The parsed arguments of these names, as keyword arguments."""
    return {name: getattr(args, name) for name in names}


def _quiet_tensorflow() -> None:
    """Imports TensorFlow and Keras without their start-up log lines (oneDNN notes, CUDA
    probing errors on a machine without a GPU), which TF_CPP_MIN_LOG_LEVEL does not stop:
    they are written before logging is set up, once at import and again when the devices
    are listed. TF_CPP_MIN_LOG_LEVEL=0 set by the user keeps them all."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _native_stderr_silenced():
        import keras  # noqa: F401
        import tensorflow as tf

        tf.config.list_physical_devices()


def _run_demo(args: argparse.Namespace) -> int:
    if args.explain > 500:
        raise UsageError(f"--explain: {args.explain} is invalid, expected at most 500")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise UsageError(f"--out: directory {out_dir!r} does not exist")
    _require_plot_extra()
    _quiet_tensorflow()
    from fastocclusion.demo import run_demo

    run_demo(**_options(args, "out", "seed", "epochs", "samples", "explain", "batch_size"))
    return 0


def _load_model(path: str) -> Any:
    import keras

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001 - any load failure is the user's file
        raise UsageError(
            f"--model: {path!r} could not be loaded as a Keras model "
            f"({type(error).__name__}: {error})"
        ) from None
    input_shape = getattr(model, "input_shape", None)
    if not (
        isinstance(input_shape, tuple)
        and len(input_shape) == 4
        and input_shape[-1] in CHANNEL_MODES
    ):
        raise UsageError(
            f"--model: input shape {input_shape} is not supported, expected "
            "one image input (batch, height, width, 1|3|4)"
        )
    output_shape = getattr(model, "output_shape", None)
    if not (
        isinstance(output_shape, tuple)
        and len(output_shape) == 2
        and isinstance(output_shape[-1], int)
    ):
        raise UsageError(
            f"--model: output shape {output_shape} is not supported, expected (batch, classes)"
        )
    return model


def _load_image(path: str, mode: str, size: tuple[int, int] | None, scale: float) -> Any:
    """(H, W, C) float32: the file in ``mode``, resized to ``size`` (rows, cols) when given,
    divided by ``scale`` (the reader the distributed workers use too)."""
    from fastocclusion.distributed.datasets import read_image

    try:
        return read_image(path, mode, size, scale)
    except ValueError as error:
        raise UsageError(f"--images: {error}") from None


def _output_names(paths: Sequence[str]) -> list[str]:
    """<stem>_occlusion.png per image; repeated stems get _2, _3, ..."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        seen[stem] = seen.get(stem, 0) + 1
        suffix = "" if seen[stem] == 1 else f"_{seen[stem]}"
        names.append(f"{stem}{suffix}_occlusion.png")
    return names


def _check_patch(value: int | tuple[int, int], flag: str, height: int, width: int) -> None:
    rows, cols = (value, value) if isinstance(value, int) else value
    if rows > height or cols > width:
        raise UsageError(
            f"{flag}: {value} is invalid, expected at most the model's input size {height}x{width}"
        )


def _output_directory(out: str) -> None:
    """--out created and checked writable, after every other check and before any model
    call (so that an error writes nothing and a bad DIR costs no model call)."""
    from fastocclusion.distributed.store import writable_directory

    try:
        writable_directory(out, "--out")
    except ValueError as error:
        raise UsageError(str(error)) from None


def _in_flags(message: str) -> str:
    """A message of ``explain_dataset`` in the command line's words: --out for ``out_dir``,
    --overwrite for ``overwrite=True``."""
    from fastocclusion.distributed.store import OVERWRITE

    if message.startswith("out_dir: "):
        message = "--out: " + message.removeprefix("out_dir: ")
    return message.replace(OVERWRITE, "--overwrite")


def _image_paths(entries: Sequence[str]) -> list[str]:
    """--images: image files as given, and for a directory the image files directly inside
    it, sorted by name."""
    from fastocclusion.distributed.datasets import ImageFiles

    paths: list[str] = []
    for entry in entries:
        if os.path.isdir(entry):
            try:
                paths += ImageFiles.from_directory(entry).paths
            except ValueError as error:
                raise UsageError(f"--images: {str(error).removeprefix('dataset: ')}") from None
        elif os.path.isfile(entry):
            paths.append(entry)
        else:
            raise UsageError(f"--images: {entry!r} does not exist or is not a file or a directory")
    return paths


def _run_explain(args: argparse.Namespace) -> int:
    args.images = _image_paths(args.images)
    if not os.path.isfile(args.model):
        raise UsageError(f"--model: {args.model!r} does not exist or is not a file")
    if args.workers is None:
        for flag, value in (
            ("--ray-address", args.ray_address),
            ("--shard-size", args.shard_size),
            ("--overwrite", args.overwrite or None),
        ):
            if value is not None:
                raise UsageError(f"{flag}: is only valid with --workers N")
    _require_plot_extra()
    _quiet_tensorflow()
    import numpy as np

    from fastocclusion import Occlusion

    model = _load_model(args.model)
    _, height, width, channels = model.input_shape
    classes = model.output_shape[-1]
    if args.target is not None and not 0 <= args.target < classes:
        raise UsageError(
            f"--target: {args.target} is invalid, expected a class index in "
            f"0..{classes - 1} (the model has {classes} outputs)"
        )
    mode = CHANNEL_MODES[channels]
    size = (height, width) if height is not None and width is not None else None
    first = None
    if size is None:  # a model with free spatial dimensions: every image as the first one
        first = _load_image(args.images[0], mode, size, args.scale)
        size = first.shape[:2]
        print(f"note: the model accepts any size; images are resized to {size[0]}x{size[1]}")
    if args.workers is not None:  # the workers read the images
        _check_patch(args.patch_size, "--patch-size", *size)
        _check_patch(args.patch_stride, "--patch-stride", *size)
        _output_directory(args.out)
        return _run_explain_on_workers(args, mode, size)
    if first is None:
        first = _load_image(args.images[0], mode, size, args.scale)
    images = np.stack([first] + [_load_image(p, mode, size, args.scale) for p in args.images[1:]])
    _check_patch(args.patch_size, "--patch-size", *size)
    _check_patch(args.patch_stride, "--patch-stride", *size)
    _output_directory(args.out)

    predictions = np.asarray(model.predict(images, batch_size=32, verbose=0))
    labels = (
        np.full(len(images), args.target) if args.target is not None else predictions.argmax(axis=1)
    )
    targets = np.eye(classes, dtype=np.float32)[labels]
    try:
        explainer = Occlusion(model, **_options(args, *OCCLUSION_OPTIONS))
        maps = explainer.explain(images, targets).numpy()[..., 0]
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None
    scores = predictions[np.arange(len(images)), labels]
    _write_outputs(args, list(images), maps, labels, scores)
    return 0


#: The explain options passed to Occlusion as they are parsed.
OCCLUSION_OPTIONS = (
    "batch_size",
    "patch_size",
    "patch_stride",
    "occlusion_value",
    "edges",
    "reduction",
)


def _write_outputs(
    args: argparse.Namespace, images: Any, maps: Any, labels: Any, scores: Any
) -> None:
    """DIR/maps.npy (N, H, W) and one overlay per image (``images``: a sequence of the
    model's inputs, read as they are needed), with a line per image."""
    import numpy as np

    from fastocclusion.plot import save_overlay

    np.save(os.path.join(args.out, "maps.npy"), maps)
    for index, (path, name) in enumerate(zip(args.images, _output_names(args.images))):
        out = os.path.join(args.out, name)
        hmap, label = maps[index], labels[index]
        save_overlay(out, images[index], hmap, title=f"{os.path.basename(path)}: class {label}")
        print(
            f"{path}: class {label} (output {scores[index]:.4g}), map max "
            f"{hmap.max():.4g} min {hmap.min():.4g} -> {out}"
        )
    print(f"wrote {os.path.join(args.out, 'maps.npy')} {maps.shape}")


class _ImagesRead:
    """The images as the model sees them, each read from its file when indexed."""

    def __init__(self, paths: Sequence[str], mode: str, size: tuple[int, int], scale: float):
        self.paths, self.mode, self.size, self.scale = paths, mode, size, scale

    def __getitem__(self, index: int) -> Any:
        return _load_image(self.paths[index], self.mode, self.size, self.scale)


def _run_explain_on_workers(args: argparse.Namespace, mode: str, size: tuple[int, int]) -> int:
    """``explain --workers N``: the images explained on Ray workers (each loads the model
    file), the shards and manifest kept in DIR; then the same outputs as without
    --workers. 1 when shards failed (named on stderr; the same command resumes). The model
    file's SHA-256 identifies the model: DIR holding another model's run is an error
    (exit 2, before any model call) unless --overwrite."""
    import functools

    import keras

    try:
        import ray
    except ImportError:
        raise UsageError('--workers: needs Ray: pip install "fastocclusion[ray]"') from None
    from fastocclusion.distributed import ImageFiles, explain_dataset, load_results
    from fastocclusion.distributed.models import file_digest

    try:
        model_id = file_digest(args.model, "--model")
    except ValueError as error:
        raise UsageError(str(error)) from None

    started = not ray.is_initialized()
    if started:  # the workers' own log lines (TensorFlow's start-up) are not shown
        try:
            ray.init(address=args.ray_address, log_to_driver=False)
        except (ConnectionError, ValueError, RuntimeError) as error:
            raise UsageError(f"--ray-address: {args.ray_address!r}: {error}") from None
    try:
        summary = explain_dataset(
            ImageFiles(tuple(args.images), mode, size, args.scale),
            functools.partial(keras.models.load_model, os.path.abspath(args.model), compile=False),
            args.out,
            targets=args.target,
            workers=args.workers,
            shard_size=args.shard_size or DEFAULT_SHARD_SIZE,
            ray_address=args.ray_address,
            model_id=model_id,
            overwrite=args.overwrite,
            **_options(args, *OCCLUSION_OPTIONS),
        )
    except (ValueError, TypeError) as error:
        raise UsageError(_in_flags(str(error))) from None
    finally:
        if started:
            ray.shutdown()
    print(summary)
    if not summary.complete:
        for name, error in summary.failed.items():
            print(f"fastocclusion explain: error: {name}: {error}", file=sys.stderr)
        print(
            "fastocclusion explain: the run is incomplete; fix the inputs and run the same "
            "command again to resume",
            file=sys.stderr,
        )
        return 1
    results = load_results(args.out)
    images = _ImagesRead(args.images, mode, size, args.scale)
    _write_outputs(args, images, results.maps[..., 0], results.labels, results.outputs)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fastocclusion`` command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, usage errors
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 2)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "demo":
            return _run_demo(args)
        return _run_explain(args)
    except UsageError as error:
        print(f"fastocclusion {args.command}: error: {error}", file=sys.stderr)
        return 2
