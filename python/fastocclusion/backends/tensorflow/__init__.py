"""The TensorFlow backend: Keras models, tf.Modules, TensorFlow callables, and models over
NumPy arrays (plain callables, scikit-learn style objects, TFLite interpreters).

- ``backend``: ``TFBackend`` (engine.protocols.Backend), batches filled in host memory;
- ``models``: one calling convention for every model kind (``adapt_model``);
- ``operators``: the built-in scores as TensorFlow functions (``resolve_operator``).

Importing this package imports TensorFlow.
"""

from fastocclusion.backends.tensorflow.backend import TFBackend

__all__ = ["TFBackend"]
