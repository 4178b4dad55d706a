"""What ``explain`` writes, with or without --workers: DIR/maps.npy (N, H, W) and one
overlay PNG per image, DIR/<stem>_occlusion.png, with a line per image on stdout."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

__all__ = ["write_outputs"]


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


def write_outputs(
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
