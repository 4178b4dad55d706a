"""The Xplique-compatible front-end: Xplique's ``Occlusion`` API over fastocclusion's engine
(``from fastocclusion import Occlusion``), with its helpers beside it:

- ``occlusion``: the ``Occlusion`` class (its options, explain, explain_classes);
- ``layouts``: how an input's shape and ``data_format`` become windows and a baseline;
- ``masks``: Xplique's own static helpers (boolean masks, occluded copies, sensitivity), for
  code that calls them.
"""

from fastocclusion.xplique.occlusion import AUTO_BATCH_BYTES, ExplainStats, Occlusion

__all__ = ["AUTO_BATCH_BYTES", "ExplainStats", "Occlusion"]
