"""Maps of a fixed set of explains, saved to compare two versions of fastocclusion.

Run it with one version importable, then with the other, and compare:

    PYTHONPATH=old/python python benchmarks/maps_snapshot.py --out old.npz
    python benchmarks/maps_snapshot.py --out new.npz --compare old.npz

Every front-end and backend is covered with random models and inputs (fixed seeds): the
Xplique-style ``Occlusion`` on Keras, NumPy and PyTorch models (images, volumes, time
series, tabular rows; top-class, given and custom-operator targets; sum/mean, valid/cover;
incremental and normal sweeps; all-class maps), the Captum and MONAI front-ends. A
restructuring that claims "maps unchanged" shows ``max abs diff 0`` for every entry.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _numpy(maps) -> np.ndarray:
    if hasattr(maps, "detach"):
        return maps.detach().cpu().numpy()
    return maps.numpy() if hasattr(maps, "numpy") else np.asarray(maps)


def keras_cases(out: dict[str, np.ndarray]) -> None:
    import keras

    from fastocclusion import Occlusion

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(5),
        ]
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 16, 16, 3)).astype(np.float32)
    y = np.eye(5, dtype=np.float32)[[1, 4, 0]]
    for incremental in (False, True):
        for edges, reduction in (("valid", "sum"), ("cover", "mean")):
            method = Occlusion(
                model, batch_size=7, patch_size=4, patch_stride=3, occlusion_value=0.5,
                edges=edges, reduction=reduction, incremental=incremental,
            )  # fmt: skip
            out[f"keras/{incremental}/{edges}/top"] = _numpy(method.explain(x))
            out[f"keras/{incremental}/{edges}/given"] = _numpy(method.explain(x, y))
    method = Occlusion(model, batch_size=16, patch_size=5, patch_stride=5, incremental=False)
    out["keras/classes"] = _numpy(method.explain_classes(x))

    def custom(f, inputs, targets):
        return np.sum(np.asarray(f(inputs)) * np.asarray(targets), axis=-1) ** 2

    method = Occlusion(model, operator=custom, patch_size=4, patch_stride=4)
    out["keras/custom"] = _numpy(method.explain(x, y))


def numpy_cases(out: dict[str, np.ndarray]) -> None:
    from fastocclusion import Occlusion

    rng = np.random.default_rng(1)
    for name, shape, patch in (
        ("tabular", (4, 13), 3),
        ("series", (3, 20, 4), (4, 2)),
        ("volume", (2, 6, 8, 8, 2), 3),
    ):
        x = rng.normal(size=shape).astype(np.float32)
        weights = rng.normal(size=(int(np.prod(shape[1:])), 6)).astype(np.float32)

        def model(batch, weights=weights):
            return np.tanh(np.asarray(batch).reshape(len(batch), -1) @ weights)

        method = Occlusion(model, batch_size=5, patch_size=patch, patch_stride=2)
        out[f"numpy/{name}"] = _numpy(method.explain(x))
        regression = Occlusion(model, operator="regression", patch_size=patch, patch_stride=3)
        out[f"numpy/{name}/regression"] = _numpy(
            regression.explain(x, rng.normal(size=(len(x), 6)))
        )


def _without_incremental(make, *args, **kwargs):
    """``make(*args, **kwargs, incremental=False)``, or without it where it is unknown."""
    try:
        return make(*args, **kwargs, incremental=False)
    except TypeError:
        return make(*args, **kwargs)


def torch_cases(out: dict[str, np.ndarray]) -> None:
    import torch

    from fastocclusion import Occlusion
    from fastocclusion.captum import Occlusion as CaptumOcclusion
    from fastocclusion.monai import OcclusionSensitivity

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 8, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(8, 4),
    ).eval()  # fmt: skip
    x = torch.randn(3, 3, 20, 20)
    for incremental in (False, True):
        method = Occlusion(
            model, batch_size=9, patch_size=4, patch_stride=2, data_format="channels_first",
            incremental=incremental,
        )  # fmt: skip
        out[f"torch/{incremental}/top"] = _numpy(method.explain(x))
        out[f"torch/{incremental}/given"] = _numpy(
            method.explain(x, np.eye(4, dtype=np.float32)[[3, 0, 2]])
        )
    # Captum and MONAI: the normal sweep (their incremental keyword came later: a version
    # without it is compared as it is)
    captum = _without_incremental(CaptumOcclusion, model)
    out["captum"] = _numpy(
        captum.attribute(x, sliding_window_shapes=(3, 5, 5), strides=(3, 2, 3), target=1,
                         perturbations_per_eval=4)
    )  # fmt: skip
    monai = _without_incremental(OcclusionSensitivity, model, mask_size=6, n_batch=8, overlap=0.5)
    maps, _ = monai(x[:1])
    out["monai"] = _numpy(maps)
    two = CaptumOcclusion(lambda a, b: (a * b).flatten(1).sum(1, keepdim=True))
    out["captum/two_inputs"] = np.concatenate(
        [_numpy(m).ravel() for m in two.attribute((x, x.flip(0)), sliding_window_shapes=((3, 4, 4),
                                                  (3, 5, 5)), target=0)]
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="where to save the maps (.npz)")
    parser.add_argument("--compare", help="an earlier snapshot to compare with")
    args = parser.parse_args()
    import fastocclusion

    print(f"fastocclusion from {os.path.dirname(fastocclusion.__file__)}", file=sys.stderr)
    maps: dict[str, np.ndarray] = {}
    keras_cases(maps)
    numpy_cases(maps)
    torch_cases(maps)
    np.savez(args.out, **maps)
    if args.compare:
        before = np.load(args.compare)
        worst = 0.0
        for key in sorted(set(before.files) | set(maps)):
            if key not in maps or key not in before.files:
                print(f"{key}: only in {'the snapshot' if key in before.files else 'this run'}")
                continue
            a, b = before[key], maps[key]
            diff = float(np.abs(a - b).max()) if a.shape == b.shape else float("inf")
            worst = max(worst, diff)
            print(f"{key}: shape {b.shape}, max abs diff {diff:.3g}")
        print(f"{len(maps)} maps, worst max abs diff {worst:.3g}")


if __name__ == "__main__":
    main()
