"""progress=True: a tqdm bar over the perturbed samples, same maps as without it."""

from __future__ import annotations

import numpy as np
import pytest
from reference import LinearNumpyModel

from fastocclusion import Occlusion


def test_progress_bar_counts_every_perturbed_sample(capsys):
    x = np.random.default_rng(0).random((3, 8, 6, 2), dtype=np.float32)
    model = LinearNumpyModel(x.shape[1:])
    plain = Occlusion(model, batch_size=4, patch_size=2, patch_stride=2).explain(x).numpy()
    capsys.readouterr()
    shown = (
        Occlusion(model, batch_size=4, patch_size=2, patch_stride=2, progress=True)
        .explain(x)
        .numpy()
    )
    err = capsys.readouterr().err
    np.testing.assert_array_equal(shown, plain)
    total = 3 * 4 * 3  # inputs x patch rows x patch columns
    assert f"{total}/{total}" in err, err


@pytest.mark.parametrize("value", [1, "yes", None])
def test_progress_must_be_a_bool(value):
    with pytest.raises(ValueError, match="progress"):
        Occlusion(LinearNumpyModel((4, 4, 1)), progress=value)
