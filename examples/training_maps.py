"""Occlusion maps while a model trains: the demo's small Keras CNN (squares vs discs in
noise, ``fastocclusion.demo``) trained for a few epochs with ``fastocclusion.keras
.OcclusionCallback``. Every epoch the callback explains held-out images (32 by default)
with the current weights and writes the overlay grid to TensorBoard; this script also
prints, per epoch, the pointing game of those maps (does each map's peak lie on the
object?) and what the maps cost (seconds, share of the epoch).

    pip install ".[tensorflow,plot]" tensorboard
    python examples/training_maps.py [--epochs 4] [--log-dir logs/training_maps]
    tensorboard --logdir logs/training_maps     # the grids under IMAGES, the costs under SCALARS
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from fastocclusion.demo import CLASS_NAMES, build_model, make_dataset, pointing_hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--images", type=int, default=32, help="held-out images explained")
    parser.add_argument("--log-dir", default=os.path.join("logs", "training_maps"))
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    from fastocclusion.keras import OcclusionCallback

    keras.utils.set_random_seed(0)
    x_train, y_train, _ = make_dataset(args.samples, np.random.default_rng([0, 1]))
    x_test, y_test, masks = make_dataset(args.images, np.random.default_rng([0, 2]))
    options = dict(patch_size=4, patch_stride=2, batch_size=256)
    callback = OcclusionCallback(
        x_test, y_test, log_dir=args.log_dir, max_images=args.images, **options
    )

    writer = tf.summary.create_file_writer(args.log_dir)

    class Pointing(keras.callbacks.Callback):
        """After the occlusion callback: the pointing game of its latest maps, printed and
        logged to TensorBoard (occlusion/pointing_game)."""

        def on_epoch_end(self, epoch, logs=None):
            path = os.path.join(args.log_dir, f"occlusion_maps_epoch_{epoch + 1:04d}.npy")
            hits = pointing_hits(np.load(path), masks)
            with writer.as_default():
                tf.summary.scalar("occlusion/pointing_game", hits.mean(), step=epoch + 1)
            cost = callback.costs[-1]
            print(
                f"epoch {epoch + 1}: loss {logs['loss']:.3f}, pointing game "
                f"{hits.mean():.3f} ({hits.sum()}/{len(hits)}), maps {cost.seconds:.2f} s = "
                f"{100 * cost.share:.1f} % of the epoch"
            )

    model = build_model()
    one_hot = np.eye(len(CLASS_NAMES), dtype=np.float32)
    model.fit(x_train, one_hot[y_train], epochs=args.epochs, batch_size=32, verbose=0,
              callbacks=[callback, Pointing()])  # fmt: skip
    accuracy = float(np.mean(model.predict(x_test, verbose=0).argmax(axis=1) == y_test))
    print(f"held-out accuracy {accuracy:.3f}; TensorBoard logs in {args.log_dir}")


if __name__ == "__main__":
    main()
