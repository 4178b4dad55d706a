"""The PyTorch backend: ``torch.nn.Module`` models on the CPU or a CUDA device.

- ``backend``: ``TorchBackend`` (engine.protocols.Backend);
- ``device``: where the model runs, the GPU sweep's device arrays;
- ``operators``: the built-in scores in torch, with the TensorFlow built-ins' numerics;
- ``callable``: ``TorchCallable``, a function over torch tensors as a model;
- ``incremental``: exact incremental inference over a torch.fx trace of a CNN.

Importing this package imports torch, never TensorFlow.
"""

from fastocclusion.backends.torch.backend import TorchBackend
from fastocclusion.backends.torch.callable import TorchCallable

__all__ = ["TorchBackend", "TorchCallable"]
