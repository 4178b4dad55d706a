"""MONAI's ``OcclusionSensitivity`` over fastocclusion's engine: the constructor and call of
MONAI 1.6 (``monai.visualize.OcclusionSensitivity``) and its results, with the model calls
as the only cost. MONAI itself is not needed.

What MONAI computes, and so this: for one image ``x`` of shape (1, C, *spatial) (1 to 3
spatial axes), a window of ``mask_size`` slides over the spatial axes (all channels at once)
at MONAI's sliding-window positions: steps of ``int(mask * (1 - overlap))`` (at least 1;
the window itself where it spans the axis), the last window moved back to end at the edge
(engine geometry: "shift" edges). Each window's region is occluded:

- a number: set to that value;
- ``"mean_img"``: set to the mean of the whole image;
- ``"mean_patch"``: multiplied by the mean of the occluded region (all channels): MONAI
  1.6 documents "replaced with the mean" but multiplies (``add, mul`` swapped in its
  predictor), and this reproduces what MONAI computes;
- ``"gaussian"``: multiplied by 1 - a Gaussian (0 at the window's centre, 1 at its corners).

Every occluded image goes through ``nn_module`` (in eval mode, with ``**kwargs``), and its
outputs, activated (``activate=True``: a sigmoid when ``x`` has one channel, else a softmax
over the classes; a callable; or ``False``: none), are the map: each voxel gets, per class,
the mean of the outputs of the windows covering it, weighted by a Gaussian over the window
for ``"gaussian"`` (MONAI's ``sliding_window_inference`` blending), evenly otherwise. The map
is of the outputs themselves, not of a drop. ``b_box`` ([min1, max1, min2, ...], -1: the
whole axis) restricts the windows to the box widened by half a mask (MONAI's margins) and
crops the map to [min, max) per axis.

Returns ``(occ_sens_map, most_probable_class)``: the map (1, classes, *spatial cropped),
float32 on ``x``'s device (MONAI 1.6 returns float32 whatever ``x``'s dtype), and its argmax
over the classes (1, 1, *spatial cropped), int64.
Batches are built in ``x``'s dtype, as MONAI computes its occluded images (float64 in every
mode; float16 and bfloat16 where the mode copies a constant), else in float32 and cast to
``x``'s dtype for the call (the half types' "gaussian" and "mean_patch": MONAI's half product
is a float32 product rounded, as that cast rounds it).
Not supported: a callable ``mode`` (MONAI calls it once per window: a Python loop per
window is what this package exists to avoid).
"""

from fastocclusion.monai.sensitivity import MonaiModeError, OcclusionSensitivity

__all__ = ["MonaiModeError", "OcclusionSensitivity"]
