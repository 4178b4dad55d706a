"""The TensorFlow backend: Keras models, tf.Modules, TensorFlow callables, TFLite
interpreters, and, when TensorFlow is installed, models over NumPy arrays (plain callables,
scikit-learn style objects: their kinds, call policy and NumPy scores are the NumPy
backend's, backends/numpy, which runs them without TensorFlow).

- ``backend``: ``TFBackend`` (engine.protocols.Backend), batches filled in host memory;
- ``models``: one calling convention for every model kind (``adapt_model``);
- ``operators``: the built-in scores as TensorFlow functions (``resolve_operator``).

Importing this package imports TensorFlow.
"""

from fastocclusion.backends.tensorflow.backend import TFBackend

__all__ = ["TFBackend"]
