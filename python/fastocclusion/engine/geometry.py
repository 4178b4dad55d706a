"""The windows of a sweep over one input's axes, and the shape of its maps (design §7).

A front-end turns its own options (Xplique's patch_size over H and W, Captum's window over
any axes, ...) into one ``WindowGeometry``; the engine needs nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastocclusion import _core


@dataclass(frozen=True)
class WindowGeometry:
    """Windows over the axes of one input.

    sample_shape : one input's shape (1 to 5 axes).
    window, stride : one size per axis.
    edges : "valid" | "cover" | "shift" (MONAI's last window moved back) for every axis.
    collapsed_axes : axes that one window covers in full and that the maps keep with length
        1 (e.g. the channels of an image: maps (H, W, 1)).
    region : None, or a (begin, end) pair per axis: the windows lie in that box, anchored at
        its begin; the maps are 0 outside it, and fewer windows mean fewer model calls.
    """

    sample_shape: tuple[int, ...]
    window: tuple[int, ...]
    stride: tuple[int, ...]
    edges: str = "valid"
    collapsed_axes: tuple[int, ...] = ()
    region: tuple[tuple[int, int], ...] | None = None

    def grid(self) -> _core.WindowGrid:
        """The compiled grid (ValueError from the core for inconsistent sizes), compiled
        once per geometry: a front-end sizing its batches and the sweep share it."""
        grid = self.__dict__.get("_grid")
        if grid is None:
            grid = _core.WindowGrid(
                self.sample_shape, self.window, self.stride, self.edges, region=self.region
            )
            object.__setattr__(self, "_grid", grid)  # frozen: a cache, not a field
        return grid

    @property
    def map_shape(self) -> tuple[int, ...]:
        """One input's map: the sample shape with the collapsed axes of length 1."""
        return tuple(
            1 if axis in self.collapsed_axes else length
            for axis, length in enumerate(self.sample_shape)
        )
