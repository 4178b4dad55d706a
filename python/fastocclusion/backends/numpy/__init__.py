"""The NumPy backend: models over NumPy arrays (plain callables, scikit-learn style objects)
with no framework installed.

- ``backend``: ``NumpyBackend`` (engine.protocols.Backend), batches filled in host memory;
- ``calls``: how a NumPy model is called on a reused batch buffer (read-only views, copies
  for models that keep or write into their batches), shared with the TensorFlow backend;
- ``models``: the NumPy model kinds and their outputs (``adapt_numpy_model``), shared too;
- ``operators``: the built-in scores in NumPy, with the TensorFlow built-ins' numerics.

``backends.make_backend`` picks this backend for NumPy models when TensorFlow is not
installed; ``explain`` then returns float32 NumPy arrays. Importing this package imports
NumPy only.
"""

from fastocclusion.backends.numpy.backend import NumpyBackend

__all__ = ["NumpyBackend"]
