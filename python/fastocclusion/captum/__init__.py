"""Captum's ``Occlusion`` API over fastocclusion's engine: ``Occlusion(forward_func)
.attribute(inputs, sliding_window_shapes, ...)`` with Captum 0.9's signature and results.

What Captum computes, and so this: for every input tensor in turn, a window of
``sliding_window_shapes`` slides over all its non-batch axes (channels included) with
``strides``; the last window of an axis is clipped at the far edge; each feature gets the
mean, over the windows covering it, of the drop of the target output when the window is
set to the baseline (engine geometry: "cover" edges, "mean" reduction, no collapsed axis).
The other inputs stay as they are. Attributions have the inputs' shapes and devices and are
float32, as Captum's are. Batches are built in float32 (the kernels' type) and cast to the
input's dtype for the call: a float64 input is seen at float32 precision.

Captum's arguments, as it reads them:
- ``inputs``: a tensor, or a tuple of tensors sharing their first (batch) dimension;
- ``sliding_window_shapes``: one tuple per input (a tuple of ints for one tensor);
- ``strides``: None (1), an int, a tuple of ints, or one per input; never larger than the
  window;
- ``baselines``: None (0), a number, a tensor broadcastable to the input (per example with
  a first dimension N), or one per input;
- ``target``: None (the output is one value per example), an int or a tuple of ints (the
  last axes of every example's output), a tensor (a scalar, or one index per example), or a
  list of ints or tuples, one per example (the axes after the batch axis);
- ``additional_forward_args``: extra arguments after the inputs (a tuple, or one object);
  tensors whose first dimension is N go with their examples (Captum repeats them along the
  batch);
- ``perturbations_per_eval``: per input tensor, one call on the N unperturbed examples,
  then ceil(windows / perturbations_per_eval) calls sharing the N x windows perturbed
  examples evenly (at most N x perturbations_per_eval each; Captum fills all but the last).

A function returning one value for the whole batch (a 0-d tensor, target None) runs in
Captum's aggregate mode: every window occluded in all N examples at once, (1, ...)
attributions (perturbations_per_eval must be 1, as in Captum). Errors where Captum asserts
are ``CaptumArgumentError``s (ValueError and AssertionError).
"""

from fastocclusion.captum.arguments import CaptumArgumentError
from fastocclusion.captum.occlusion import Occlusion

__all__ = ["CaptumArgumentError", "Occlusion"]
