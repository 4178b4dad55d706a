"""The command line's grammar: the ``demo`` and ``explain`` commands, their flags and the
flag types (argparse only), and the parsed arguments handed on as keyword arguments."""

from __future__ import annotations

import argparse
from typing import Any

import fastocclusion

__all__ = ["DEFAULT_SHARD_SIZE", "OCCLUSION_OPTIONS", "build_parser", "options"]

#: Images per shard of ``explain --workers`` unless --shard-size says otherwise.
DEFAULT_SHARD_SIZE = 32

#: The explain options passed to Occlusion as they are parsed.
OCCLUSION_OPTIONS = (
    "batch_size",
    "patch_size",
    "patch_stride",
    "occlusion_value",
    "edges",
    "reduction",
)


def options(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The parsed arguments of these names, as keyword arguments."""
    return {name: getattr(args, name) for name in names}


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
    """The ``fastocclusion`` parser: --version, and the ``demo`` and ``explain`` commands."""
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
