"""fastocclusion.monai.OcclusionSensitivity against MONAI 1.6's own: random models, 1-D, 2-D
and 3-D images of 1 to 3 channels, every occlusion mode, overlaps, mask sizes, bounding boxes,
activations and batch sizes; the occluded images themselves, the Gaussian mask and weights,
the number of model calls, eval mode, bad input. Needs monai (``pip install monai``): the
tests are marked `torch` and skip, saying why, without it.

Tolerance. The occluded images are MONAI's bit for bit (windows, masks, values; for
"mean_patch" the region means are float64 sums here and float32 torch reductions there, one
float32 rounding apart). What differs is the blend: MONAI sums the windows' outputs and
weights in float32 in window order, fastocclusion in float64. So the maps agree to float32
round-off of sums of a few dozen terms: |ours - MONAI| <= 2e-6 x max(1, max |MONAI's map|)
(the worst seen over 300 random cases is 4e-7), and the most probable classes agree
wherever the top two classes are further apart than that.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason='needs PyTorch: pip install ".[torch]"')
pytest.importorskip("monai", reason="needs MONAI: pip install monai")
from fake_cuda import fake_monai_device  # noqa: E402
from monai.data import MetaTensor  # noqa: E402
from monai.data.utils import compute_importance_map  # noqa: E402
from monai.visualize import OcclusionSensitivity as MonaiOcclusionSensitivity  # noqa: E402

from fastocclusion.monai import MonaiModeError, OcclusionSensitivity  # noqa: E402
from fastocclusion.monai.arguments import batch_dtype  # noqa: E402
from fastocclusion.monai.windows import gaussian_importance, gaussian_mask  # noqa: E402

pytestmark = [
    pytest.mark.torch,
    # MONAI 1.6 indexes tensors with lists (torch deprecates it): MONAI's, not ours.
    pytest.mark.filterwarnings("ignore:Using a non-tuple sequence:UserWarning"),
]

TOLERANCE = 2e-6


class Net(torch.nn.Module):
    """A random classifier of (N, C, *spatial) images: convolution, batch norm, dropout
    (so eval mode matters), pooling, a linear layer to `classes` outputs."""

    def __init__(self, channels: int, dims: int, classes: int, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        conv = [torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d][dims - 1]
        norm = [torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d][dims - 1]
        pool = [torch.nn.AdaptiveAvgPool1d, torch.nn.AdaptiveAvgPool2d, torch.nn.AdaptiveAvgPool3d]
        self.features = torch.nn.Sequential(
            conv(channels, 5, 3, padding=1),
            norm(5),
            torch.nn.ReLU(),
            torch.nn.Dropout(0.5),
            pool[dims - 1](2),
            torch.nn.Flatten(),
        )
        self.head = torch.nn.Linear(5 * 2**dims, classes)
        with torch.no_grad():  # running statistics of their own: eval differs from training
            self.features[1].running_mean.uniform_(-0.5, 0.5)
            self.features[1].running_var.uniform_(0.5, 2.0)
        self.calls: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        self.calls.append(tuple(x.shape))
        return 3 * self.head(self.features(x)) * scale


def double(t: torch.Tensor) -> torch.Tensor:
    return 2 * torch.tanh(t)


def random_case(seed: int) -> dict:
    """One call's arguments, drawn from every option MONAI has."""
    rng = np.random.default_rng(seed)
    dims = int(rng.choice([2, 2, 3]))
    channels = int(rng.choice([1, 3]))
    shape = tuple(int(s) for s in rng.integers(5, 13 if dims == 2 else 8, size=dims))
    if rng.random() < 0.5:
        mask: object = int(rng.integers(1, min(shape) + 1))
    else:
        mask = tuple(int(rng.integers(1, s + 1)) for s in shape)
    b_box = None
    if rng.random() < 0.4:
        b_box = []
        for s in shape:
            if rng.random() < 0.3:
                b_box += [-1, -1]
            else:
                lo = int(rng.integers(0, s - 1))
                b_box += [lo, int(rng.integers(lo + 1, s + 3))]  # past the edge: clipped
    overlap: object = float(rng.choice([0.0, 0.25, 0.5, 0.6, 0.75, 0.9]))
    if rng.random() < 0.2:
        overlap = tuple(float(o) for o in rng.choice([0.0, 0.5, 0.6], size=dims))
    return {
        "dims": dims,
        "channels": channels,
        "shape": shape,
        "classes": int(rng.integers(2, 5)),
        "mode": ["gaussian", "mean_patch", "mean_img", float(rng.uniform(-1, 1))][seed % 4],
        "mask_size": mask,
        "overlap": overlap,
        "n_batch": int(rng.choice([1, 2, 5, 16, 64])),
        "activate": [True, True, False, double][int(rng.integers(0, 4))],
        "b_box": b_box,
        "seed": seed,
    }


def run_both(case: dict, x: torch.Tensor | None = None, **kwargs):
    if x is None:
        torch.manual_seed(case["seed"] + 1)
        x = torch.rand(1, case["channels"], *case["shape"])
    net = Net(case["channels"], case["dims"], case["classes"], case["seed"]).to(x.dtype)
    options = {
        k: case[k] for k in ("mask_size", "n_batch", "mode", "overlap", "activate") if k in case
    }
    ours = OcclusionSensitivity(net, verbose=False, **options)(x, b_box=case["b_box"], **kwargs)
    our_calls, net.calls = net.calls, []
    theirs = MonaiOcclusionSensitivity(net, verbose=False, **options)(
        x, b_box=case["b_box"], **kwargs
    )
    return ours, theirs, our_calls, net.calls


def assert_same_maps(ours, theirs) -> None:
    (occ, best), (their_occ, their_best) = ours, theirs
    their_occ, their_best = their_occ.as_tensor(), their_best.as_tensor()
    assert type(occ) is torch.Tensor and occ.shape == their_occ.shape
    assert occ.dtype == their_occ.dtype and occ.device == their_occ.device
    scale = max(1.0, float(their_occ.abs().max()))
    torch.testing.assert_close(occ, their_occ, rtol=0, atol=TOLERANCE * scale)
    assert best.shape == their_best.shape and best.dtype == torch.int64
    top2 = their_occ.topk(2, dim=1).values if their_occ.shape[1] > 1 else None
    clear = (top2[:, 0] - top2[:, 1] > 4 * TOLERANCE * scale)[:, None] if top2 is not None else 1
    assert torch.equal(best * clear, their_best * clear)


@pytest.mark.parametrize("seed", range(48))
def test_random_cases_equal_monai(seed):
    case = random_case(seed)
    ours, theirs, our_calls, their_calls = run_both(case)
    assert_same_maps(ours, theirs)
    # As many model calls as MONAI, of as many images in all, none larger than n_batch
    # (MONAI's last call is the smaller one; ours spreads the windows evenly).
    assert len(our_calls) == len(their_calls)
    assert sum(c[0] for c in our_calls) == sum(c[0] for c in their_calls)
    assert max(c[0] for c in our_calls) <= max(c[0] for c in their_calls)


@pytest.mark.parametrize(
    ("mode", "overlap", "mask_size", "b_box"),
    [
        ("gaussian", 0.6, 4, None),
        ("gaussian", 0.0, (3, 5), [2, 8, -1, -1]),
        ("gaussian", 0.9, 1, None),  # a 1-pixel Gaussian multiplies by 0
        ("gaussian", 0.5, 11, None),  # mask = image: one window
        ("mean_patch", 0.6, 5, [0, 0, 3, 9]),  # max 0: MONAI reads it as the whole axis
        ("mean_patch", 0.25, (2, 7), [1, 30, 2, 4]),  # max past the image: clipped
        ("mean_img", 0.75, 6, [-1, -1, 0, 5]),
        (0.0, 0.6, 3, [5, 6, 5, 6]),  # a one-pixel box
        (-2.5, 0.5, (11, 1), None),
    ],
)
def test_chosen_cases_equal_monai(mode, overlap, mask_size, b_box):
    case = {
        "dims": 2,
        "channels": 3,
        "shape": (11, 11),
        "classes": 3,
        "mode": mode,
        "mask_size": mask_size,
        "overlap": overlap,
        "n_batch": 4,
        "b_box": b_box,
        "seed": 3,
    }
    ours, theirs, _, _ = run_both(case)
    assert_same_maps(ours, theirs)


def test_one_channel_three_d_with_kwargs_metatensor_and_float64():
    case = {"dims": 3, "channels": 1, "shape": (6, 5, 7), "classes": 2, "mask_size": 3,
            "n_batch": 7, "b_box": [1, 4, -1, -1, 0, 6], "seed": 9}  # fmt: skip
    x = MetaTensor(torch.rand(1, 1, 6, 5, 7))
    ours, theirs, _, _ = run_both(case, x, scale=0.5)  # a keyword for the module
    assert_same_maps(ours, theirs)
    ours, theirs, _, _ = run_both(case, x.as_tensor().double())
    assert ours[0].dtype == torch.float32  # as MONAI's; batches are cast to float64 for the calls
    torch.testing.assert_close(ours[0], theirs[0].as_tensor(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", ["gaussian", "mean_patch", "mean_img", 0.3])
def test_one_spatial_axis_equals_monai(mode):
    case = {"dims": 1, "channels": 2, "shape": (17,), "classes": 3, "mode": mode,
            "mask_size": 5, "overlap": 0.6, "n_batch": 3, "b_box": [2, 14], "seed": 1}  # fmt: skip
    ours, theirs, _, _ = run_both(case)
    assert_same_maps(ours, theirs)


def test_occluded_images_are_monais():
    """With one image per call both see the windows in the same order: the images fed to
    the model are MONAI's, bit for bit (to float32 rounding of the patch mean for mean_patch)."""
    for mode in ("gaussian", "mean_img", 0.25, "mean_patch"):
        net = Net(2, 2, 3, 0)
        seen: list[torch.Tensor] = []
        net.register_forward_hook(lambda m, args, out, seen=seen: seen.append(args[0].clone()))
        x = torch.rand(1, 2, 9, 10)
        args = {"mask_size": (4, 3), "n_batch": 1, "mode": mode, "overlap": 0.5, "verbose": False}
        OcclusionSensitivity(net, **args)(x, b_box=[1, 7, -1, -1])
        ours, seen[:] = torch.cat(seen), []
        MonaiOcclusionSensitivity(net, **args)(x, b_box=[1, 7, -1, -1])
        theirs = torch.cat(seen)
        assert ours.shape == theirs.shape
        torch.testing.assert_close(ours, theirs, rtol=2**-21 if mode == "mean_patch" else 0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mode", ["gaussian", "mean_img", 0.3, "mean_patch"])
def test_occluded_images_are_monais_in_the_images_dtype(dtype, mode):
    """float64, float16 and bfloat16 images: the model sees MONAI's occluded images in the
    image's dtype, bit for bit (mean_patch: to the rounding of the patch mean, MONAI's a
    torch reduction in the image's dtype, ours a float64 sum; for float64 ~1e-16), and the
    maps agree with MONAI's to its float32 sums (half types: to their precision)."""
    net = Net(2, 2, 3, 0).to(dtype)
    seen: list[torch.Tensor] = []
    net.register_forward_hook(lambda m, args, out: seen.append(args[0].clone()))
    torch.manual_seed(2)
    x = torch.rand(1, 2, 9, 10).to(dtype)
    args = {"mask_size": (4, 3), "n_batch": 1, "mode": mode, "overlap": 0.5, "verbose": False}
    ours_map = OcclusionSensitivity(net, **args)(x, b_box=[1, 7, -1, -1])
    ours, seen[:] = torch.cat(seen), []
    theirs_map = MonaiOcclusionSensitivity(net, **args)(x, b_box=[1, 7, -1, -1])
    theirs = torch.cat(seen)
    assert ours.dtype == theirs.dtype == dtype and ours.shape == theirs.shape
    if mode != "mean_patch":
        assert torch.equal(ours, theirs)
    else:
        rtol = {torch.float64: 1e-15, torch.float16: 2**-10, torch.bfloat16: 2**-7}[dtype]
        torch.testing.assert_close(ours, theirs, rtol=rtol, atol=0)
        assert (ours != theirs).float().mean() < 0.5  # most values are exactly MONAI's
    atol = {torch.float64: 1e-6, torch.float16: 1e-2, torch.bfloat16: 5e-2}[dtype]
    torch.testing.assert_close(ours_map[0], theirs_map[0].as_tensor(), rtol=0, atol=atol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_batches_are_built_in_the_images_dtype_where_monai_computes_in_it(dtype, monkeypatch):
    """The sweep's host batches hold float64 (every mode) and float16/bfloat16 (modes that
    copy a constant) values: no cast per call; the multiplying modes of the half types
    build float32 batches (cast per call, as MONAI's float32 product is rounded)."""
    import fastocclusion.monai.sensitivity as sensitivity

    built: list[np.dtype] = []
    original = sensitivity.build_sweep

    def recording(backend, inputs, *rest, **kwargs):
        built.append(inputs.dtype)
        return original(backend, inputs, *rest, **kwargs)

    monkeypatch.setattr(sensitivity, "build_sweep", recording)
    x = torch.rand(1, 2, 8, 8).to(dtype)
    held = {torch.float64: np.float64, torch.float16: np.float16, torch.bfloat16: np.int16}
    for mode in ("gaussian", "mean_patch", "mean_img", 0.5):
        built.clear()
        OcclusionSensitivity(Net(2, 2, 3, 0).to(dtype), mask_size=3, mode=mode, verbose=False)(x)
        copies = mode in ("mean_img", 0.5)
        expected = held[dtype] if dtype == torch.float64 or copies else np.float32
        assert built and set(built) == {np.dtype(expected)}, mode


@pytest.mark.parametrize("mask", [(1,), (2,), (5,), (8,), (4, 7), (3, 3, 3), (2, 5, 6), (16, 16)])
def test_gaussian_mask_and_weights_are_monais_bit_for_bit(mask):
    x = torch.zeros((1, 3, *(m + 2 for m in mask)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        theirs, _ = MonaiOcclusionSensitivity.gaussian_occlusion(x, mask)
    assert torch.equal(gaussian_mask(3, mask), theirs[0])
    assert torch.equal(gaussian_importance(mask), compute_importance_map(mask, mode="gaussian"))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("mode", ["gaussian", "mean_patch", "mean_img", 0.5])
def test_the_device_sweep_logic_on_the_cpu_equals_the_host_sweep(mode, dtype, monkeypatch):
    """The GPU path (device filler, torch bookkeeping, fills, means and blend by "_cuda")
    with the CUDA module and the device replaced by host stand-ins (fake_cuda's), its
    batches in the dtype the host sweep builds them in."""
    net, x = Net(3, 2, 4, 5).to(dtype), torch.rand(1, 3, 12, 10).to(dtype)
    explain = OcclusionSensitivity(net, mask_size=(5, 4), n_batch=6, verbose=False, mode=mode)
    host = explain(x, b_box=[1, 10, 2, 9])
    fake = fake_monai_device(monkeypatch)
    device = explain(x, b_box=[1, 10, 2, 9])
    assert fake.fills  # the device filler filled every batch
    expected = batch_dtype(dtype, mode)
    assert fake.batch_dtypes == {expected}
    torch.testing.assert_close(device[0], host[0], rtol=0, atol=1e-6)
    assert torch.equal(device[1], host[1])


def test_eval_mode_during_the_calls_and_training_flags_restored():
    net = Net(3, 2, 3, 1)
    net.train()
    net.features[3].eval()  # a submodule of its own mind keeps it
    modes: list[bool] = []
    net.register_forward_pre_hook(
        lambda m, args: modes.append(m.features[3].training or m.training)
    )
    OcclusionSensitivity(net, mask_size=4, verbose=False)(torch.rand(1, 3, 8, 8))
    assert modes and not any(modes)
    assert net.training and net.features[1].training and not net.features[3].training


def test_verbose_shows_a_progress_bar(capsys):
    OcclusionSensitivity(Net(1, 2, 2, 0), mask_size=3, n_batch=4)(torch.rand(1, 1, 6, 6))
    assert "occlusion" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("make", "call", "name"),
    [
        (dict(nn_module=3), {}, "nn_module"),
        (dict(n_batch=0), {}, "n_batch"),
        (dict(verbose="yes"), {}, "verbose"),
        (dict(mode="zeros"), {}, "mode"),
        (dict(mode=lambda x, r: r), {}, "mode"),
        (dict(mode=float("nan")), {}, "mode"),
        (dict(activate="softmax"), {}, "activate"),
        ({}, dict(x=torch.rand(2, 1, 8, 8)), "x"),
        ({}, dict(x=torch.ones(1, 1, 8, 8, dtype=torch.int64)), "x"),
        ({}, dict(x=np.zeros((1, 1, 8, 8), np.float32)), "x"),
        ({}, dict(x=torch.full((1, 1, 8, 8), float("inf"))), "x"),
        (dict(mask_size=9), {}, "mask_size"),
        (dict(mask_size=(2, 2, 2)), {}, "mask_size"),
        (dict(mask_size=0), {}, "mask_size"),
        (dict(overlap=1.0), {}, "overlap"),
        (dict(overlap=(0.5, -0.1)), {}, "overlap"),
        ({}, dict(b_box=[0, 4, 0]), "b_box"),
        ({}, dict(b_box=[6, 3, -1, -1]), "b_box"),
        ({}, dict(b_box=[9, 12, -1, -1]), "b_box"),
    ],
)
def test_bad_input_is_a_value_error_naming_it_before_any_model_call(make, call, name):
    net = Net(1, 2, 2, 0)
    options = {"nn_module": net, "mask_size": 3, "verbose": False} | make
    x = call.pop("x", torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match=f"^{name}: "):
        OcclusionSensitivity(**options)(x, **call)
    assert net.calls == []


def test_outputs_other_than_batch_by_classes_are_a_value_error_naming_the_module():
    with pytest.raises(ValueError, match="^nn_module: "):
        OcclusionSensitivity(lambda x: x.mean(dim=1), mask_size=3, verbose=False)(
            torch.rand(1, 1, 6, 6)
        )


@pytest.mark.parametrize("cls", [MonaiOcclusionSensitivity, OcclusionSensitivity])
def test_an_unknown_mode_is_caught_as_monais_not_implemented_error(cls):
    """MONAI raises NotImplementedError for an unknown mode name; ours is a ValueError
    naming ``mode`` that ``except NotImplementedError`` catches as well."""
    with pytest.raises(NotImplementedError) as caught:
        cls(Net(1, 2, 2, 0), mode="zeros")
    if cls is OcclusionSensitivity:
        assert type(caught.value) is MonaiModeError and isinstance(caught.value, ValueError)
        assert str(caught.value).startswith("mode: ")
