"""Occlusion maps during Keras training: ``OcclusionCallback`` logs maps of a few images to
TensorBoard every n-th epoch (``pip install "fastocclusion[tensorflow]"``).

>>> from fastocclusion.keras import OcclusionCallback  # doctest: +SKIP
>>> model.fit(x, y, epochs=10, callbacks=[OcclusionCallback(x_val[:8])])  # doctest: +SKIP
"""

from fastocclusion.keras.callback import OcclusionCallback

__all__ = ["OcclusionCallback"]
