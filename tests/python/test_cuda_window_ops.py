"""The CUDA kernel features of MONAI's occlusion sensitivity against the CPU core (the
oracle): "shift" grids with regions, the per_window, per_window_scale and window_mask fills
(full and incremental), window means and the weighted blend (equal bit for bit: the same
float64 sums in the same order), and fastocclusion.monai on a CUDA image against the host
sweep. Skipped as a whole, with the reason, without fastocclusion._cuda or a CUDA device.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

try:
    _cuda = importlib.import_module("fastocclusion._cuda")
except ModuleNotFoundError as error:  # only a missing module skips; a broken one fails
    if error.name != "fastocclusion._cuda":
        raise
    pytest.skip("fastocclusion was built without its CUDA module (_cuda)", allow_module_level=True)
if not _cuda.is_available():
    pytest.skip("no usable CUDA device (_cuda.is_available() is False)", allow_module_level=True)

from fastocclusion import _core  # noqa: E402

pytestmark = pytest.mark.gpu

# (n, shape, window, stride, edges, region): MONAI's channels-first images and volumes.
CASES = [
    (1, (3, 11, 12), (3, 4, 5), (3, 2, 2), "shift", None),
    (2, (1, 16, 9), (1, 7, 9), (1, 3, 9), "shift", ((0, 1), (2, 13), (0, 9))),
    (1, (2, 6, 7, 5), (2, 3, 3, 2), (2, 1, 2, 1), "shift", ((0, 2), (1, 6), (0, 7), (1, 5))),
    (3, (4, 10, 10), (2, 3, 3), (1, 5, 2), ("valid", "shift", "cover"), None),
    (1, (3, 64, 48), (3, 16, 16), (3, 6, 6), "shift", None),
]


def build(case, seed=0):
    n, shape, window, stride, edges, region = case
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(n, *shape)).astype(np.float32)
    return rng, inputs, _core.WindowGrid(shape, window, stride, edges, region=region)


@pytest.mark.parametrize("case", CASES)
def test_window_means_equal_the_cpu(case):
    _, inputs, grid = build(case)
    means = _cuda.window_means(_cuda.DeviceBuffer.from_host(inputs), grid).to_host()
    np.testing.assert_array_equal(means, _core.window_means(inputs, grid))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("kind", ["per_window", "per_window_scale", "window_mask"])
def test_window_baseline_fills_equal_the_cpu(case, kind):
    rng, inputs, grid = build(case, 1)
    if kind == "window_mask":
        values = rng.uniform(0, 1, grid.window).astype(np.float32)
    else:
        values = _core.window_means(inputs, grid)
    total = len(inputs) * grid.num_windows
    capacity = min(total, 8)
    chunk = -(-total // capacity)
    d_inputs = _cuda.DeviceBuffer.from_host(inputs)
    d_values = _cuda.DeviceBuffer.from_host(values)
    out = _cuda.DeviceBuffer((capacity, *inputs.shape[1:]))
    expected = np.empty((capacity, *inputs.shape[1:]), np.float32)
    cpu_state, device_state = _core.IncrementalFillState(), _cuda.IncrementalFillState()
    for start in range(chunk):
        count = min(capacity, (total - 1 - start) // chunk + 1)
        _core.fill_occluded_batch(
            inputs, grid, values, start, count, expected, cpu_state, stride=chunk,
            baseline_kind=kind,
        )  # fmt: skip
        _cuda.fill_occluded_batch(
            d_inputs, grid, d_values, start, count, out, device_state, stride=chunk,
            baseline_kind=kind,
        )  # fmt: skip
        np.testing.assert_array_equal(out.to_host()[:count], expected[:count])


@pytest.mark.parametrize("case", CASES)
def test_blend_equals_the_cpu(case):
    rng, _, grid = build(case, 2)
    collapsed = (0,) if grid.counts[0] == 1 and grid.window[0] == grid.shape[0] else ()
    values = rng.normal(size=(case[0] * 3, *grid.counts))
    ishape = tuple(1 if d in collapsed else w for d, w in enumerate(grid.window))
    importance = rng.uniform(1e-3, 1, ishape).astype(np.float32)
    expected = _core.blend_window_values(values, grid, importance, collapsed)
    maps = _cuda.blend_window_values(values, grid, importance, collapsed).to_host()
    # Bit for bit by construction (same float64 sums, unfused products); a float32 ulp of
    # slack in case the host compiler fused the CPU's products.
    np.testing.assert_allclose(maps, expected, rtol=2**-22, atol=0)
    with pytest.raises(ValueError, match="importance: element"):
        _cuda.blend_window_values(values, grid, importance * 0, collapsed)


@pytest.mark.parametrize("mode", ["gaussian", "mean_patch", "mean_img", 0.5])
def test_monai_front_end_on_a_cuda_image_equals_the_host_sweep(mode):
    torch = pytest.importorskip("torch", reason='needs PyTorch: pip install ".[torch]"')
    if not torch.cuda.is_available():
        pytest.skip("PyTorch sees no CUDA device")
    from fastocclusion.monai import OcclusionSensitivity

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
        torch.nn.Linear(4, 5),
    )  # fmt: skip
    x = torch.rand(1, 3, 20, 17)
    explain = OcclusionSensitivity(net, mask_size=6, n_batch=7, verbose=False, mode=mode)
    host, host_best = explain(x, b_box=[2, 18, -1, -1])
    explain.nn_module = net.cuda()
    device, device_best = explain(x.cuda(), b_box=[2, 18, -1, -1])
    assert device.device.type == "cuda" and device.shape == host.shape
    torch.testing.assert_close(device.cpu(), host, rtol=1e-5, atol=1e-6)
