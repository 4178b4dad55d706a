"""Occlusion maps during Lightning training: ``OcclusionCallback`` logs maps of a few images
at the end of every n-th validation epoch (``pip install "fastocclusion[lightning]"``).

>>> from fastocclusion.lightning import OcclusionCallback  # doctest: +SKIP
>>> trainer = Trainer(callbacks=[OcclusionCallback(val_images[:8])])  # doctest: +SKIP
"""

from fastocclusion.lightning.callback import OcclusionCallback

__all__ = ["OcclusionCallback"]
