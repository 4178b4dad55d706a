"""One Occlusion instance used many times: its batch buffer is reused across explain calls
of one shape, replaced for another, and calls from several threads are serialised. Every
result must still equal the NumPy reference."""

from __future__ import annotations

import threading

import numpy as np
from reference import LinearNumpyModel, assert_maps_close, reference_occlusion

from fastocclusion import Occlusion


def _data(shape, seed):
    rng = np.random.default_rng(seed)
    return rng.random(shape, dtype=np.float32)


def test_alternating_shapes_and_inputs_match_the_reference():
    small, large = (3, 9, 8, 2), (2, 12, 10, 2)
    models = {small[1:]: LinearNumpyModel(small[1:]), large[1:]: LinearNumpyModel(large[1:])}

    class ByShape:
        def __call__(self, batch):
            return models[tuple(np.shape(batch)[1:])](batch)

    method = Occlusion(ByShape(), batch_size=5, patch_size=3, patch_stride=2)
    for round_, shape in enumerate([small, large, small, small, large]):
        x = _data(shape, round_)  # new inputs every call, same shapes recur
        expected = reference_occlusion(
            models[shape[1:]].reference_fn, x, None, patch_size=3, patch_stride=2
        )
        assert_maps_close(method.explain(x).numpy(), expected, score_scale=1.0, coverage=4)


def test_concurrent_explains_on_one_instance_are_correct():
    shape = (2, 10, 10, 1)
    model = LinearNumpyModel(shape[1:])
    method = Occlusion(model, batch_size=6, patch_size=2, patch_stride=2)
    inputs = [_data(shape, seed) for seed in range(6)]
    expected = [
        reference_occlusion(model.reference_fn, x, None, patch_size=2, patch_stride=2)
        for x in inputs
    ]
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            results[i] = method.explain(inputs[i]).numpy()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i, want in enumerate(expected):
        assert_maps_close(results[i], want, score_scale=1.0, coverage=1)
