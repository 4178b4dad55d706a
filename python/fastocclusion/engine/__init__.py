"""The engine: one sweep over one filler interface, for every backend and front-end.

- ``geometry``: ``WindowGeometry``, the windows over one input's axes and the maps' shape;
- ``protocols``: the declared interfaces (``Backend``, the model runner, and
  ``ScoringBackend``; ``Objective``; ``Filler``, ``DeviceArrays``);
- ``objective``: the objectives (``OperatorObjective``, ``OutputValues``), ``ClassIndices``
  targets and ``BasePass``, what a base pass found;
- ``fillers``: ``HostFiller`` (C++ kernels) and ``DeviceFiller`` (CUDA kernels);
- ``sweep``: ``Sweep``, the base pass, the chunked stream of batches and the maps;
- ``build``: ``build_sweep``, the one place a sweep is built (filler, incremental scorer)
  from a front-end's inputs, windows, baseline, backend and options;
- ``regions``: the boxes of exact incremental inference (what a window can change in a
  CNN's feature maps, layer by layer) and its switch-back share;
- ``progress``, ``stats``: the progress bar and ``ExplainStats``.

Framework-neutral: nothing here imports TensorFlow or PyTorch.
"""

from fastocclusion.engine.build import IncrementalOptions, build_sweep
from fastocclusion.engine.fillers import DeviceFiller, HostFiller
from fastocclusion.engine.geometry import WindowGeometry
from fastocclusion.engine.objective import BasePass, ClassIndices, OperatorObjective
from fastocclusion.engine.protocols import Backend, DeviceArrays, Filler, Objective, ScoringBackend
from fastocclusion.engine.stats import ExplainStats
from fastocclusion.engine.sweep import Sweep

__all__ = [
    "Backend",
    "BasePass",
    "ClassIndices",
    "Objective",
    "OperatorObjective",
    "ScoringBackend",
    "DeviceArrays",
    "DeviceFiller",
    "ExplainStats",
    "Filler",
    "HostFiller",
    "IncrementalOptions",
    "Sweep",
    "WindowGeometry",
    "build_sweep",
]
