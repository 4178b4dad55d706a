"""The benchmark axes of issue 4, in one place: models, input sizes, N, patch / stride."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    name: str
    model: str  # "small_cnn" | "gap_dense" | "mobilenet"
    shape: tuple[int, int, int]  # one input (H, W, C)
    n: int
    patch: int
    stride: int
    batch_size: int = 32
    memory: bool = False  # measure peak RSS (config e) instead of time


CONFIGS = [
    Config("a", "small_cnn", (32, 32, 3), 64, 4, 2),
    Config("b", "gap_dense", (224, 224, 3), 8, 16, 8),
    Config("c", "mobilenet", (224, 224, 3), 2, 32, 16),
    Config("d", "gap_dense", (64, 64, 1), 4, 1, 1),
    Config("e", "gap_dense", (224, 224, 3), 1, 2, 2, memory=True),
]


def build_model(kind: str, shape: tuple[int, int, int]):
    import keras

    keras.utils.set_random_seed(0)
    if kind == "small_cnn":
        return keras.Sequential(
            [
                keras.Input(shape),
                keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
                keras.layers.MaxPooling2D(),
                keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
                keras.layers.GlobalAveragePooling2D(),
                keras.layers.Dense(10),
            ]
        )
    if kind == "gap_dense":
        return keras.Sequential(
            [keras.Input(shape), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)]
        )
    if kind == "mobilenet":
        return keras.applications.MobileNetV2(
            input_shape=shape, alpha=0.35, weights=None, classes=10
        )
    raise ValueError(f"model: {kind!r} is unknown")
