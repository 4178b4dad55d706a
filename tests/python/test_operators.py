"""Operators against independent NumPy references (design §3)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from fastocclusion.backends.tensorflow.operators import Operator, Tasks, resolve_operator
from fastocclusion.engine.objective import OperatorObjective
from fastocclusion.tasks import default_targets, validate_targets

DETECTION_TASKS = [
    Tasks.OBJECT_DETECTION,
    Tasks.OBJECT_DETECTION_BOX_POSITION,
    Tasks.OBJECT_DETECTION_BOX_PROBA,
    Tasks.OBJECT_DETECTION_BOX_CLASS,
]
# (use objectness, use class similarity) per variant, written independently of the module.
FACTORS = {
    Tasks.OBJECT_DETECTION: (True, True),
    Tasks.OBJECT_DETECTION_BOX_POSITION: (False, False),
    Tasks.OBJECT_DETECTION_BOX_PROBA: (True, False),
    Tasks.OBJECT_DETECTION_BOX_CLASS: (False, True),
}


# ---------------------------------------------------------------------------------- references


def ref_iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / (union + 1e-4)


def ref_detection(preds: np.ndarray, targets: np.ndarray, task: Tasks) -> np.ndarray:
    """Plain loops: preds (B, P, D), targets (B, T, D) -> (B,) float64."""
    use_proba, use_class = FACTORS[task]
    out = np.zeros(len(preds))
    for i in range(len(preds)):
        real_t = [t for t in targets[i] if np.any(t != 0)]
        real_p = [p for p in preds[i] if np.any(p != 0)]
        if not real_t or not real_p:
            continue
        per_target = []
        for t in real_t:
            best = -np.inf
            for p in real_p:
                s = ref_iou(t, p)
                if use_proba:
                    s *= p[4]
                if use_class:
                    a, b = t[5:].astype(np.float64), p[5:].astype(np.float64)
                    s *= a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-4)
                best = max(best, s)
            per_target.append(best)
        out[i] = np.mean(per_target)
    return out


def scores(task: Tasks | str, outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    op = resolve_operator(task)
    result = op.scores_from_outputs(
        tf.constant(outputs, tf.float32), tf.constant(targets, tf.float32)
    )
    assert result.dtype == tf.float32
    assert result.shape == (len(outputs),)
    return result.numpy()


def random_boxes(
    rng: np.random.Generator, batch: int, count: int, classes: int, pad: float
) -> np.ndarray:
    corner = rng.uniform(0, 4, size=(batch, count, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(1, 6, size=(batch, count, 2))], axis=-1)
    rows = np.concatenate(
        [boxes, rng.uniform(0, 1, (batch, count, 1)), rng.normal(size=(batch, count, classes))],
        axis=-1,
    )
    rows[rng.uniform(size=(batch, count)) < pad] = 0.0
    return rows.astype(np.float32)


# ---------------------------------------------------------------------------------- resolution


def test_tasks_names_match_spec() -> None:
    assert [t.value for t in Tasks] == [
        "classification",
        "regression",
        "semantic segmentation",
        "object detection",
        "object detection box position",
        "object detection box proba",
        "object detection box class",
    ]


@pytest.mark.parametrize(
    ("alias", "task"),
    [
        ("classification", Tasks.CLASSIFICATION),
        ("REGRESSION", Tasks.REGRESSION),
        ("semantic_segmentation", Tasks.SEMANTIC_SEGMENTATION),
        ("Object Detection", Tasks.OBJECT_DETECTION),
        ("object_detection_box_position", Tasks.OBJECT_DETECTION_BOX_POSITION),
        ("OBJECT_DETECTION_BOX_PROBA", Tasks.OBJECT_DETECTION_BOX_PROBA),
        ("  object detection  box class ", Tasks.OBJECT_DETECTION_BOX_CLASS),
    ],
)
def test_string_aliases(alias: str, task: Tasks) -> None:
    op = resolve_operator(alias)
    assert op.task is task and op.builtin and op.name == task.value
    assert Tasks(alias) is task


def test_none_is_classification() -> None:
    op = resolve_operator(None)
    assert op.task is Tasks.CLASSIFICATION and op.target_kind == "vector"
    assert resolve_operator(Tasks.SEMANTIC_SEGMENTATION).target_kind == "segmentation"
    assert all(resolve_operator(t).target_kind == "boxes" for t in DETECTION_TASKS)


def test_unknown_string_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"operator 'segmentation'.*'semantic segmentation'"):
        resolve_operator("segmentation")


@pytest.mark.parametrize("bad", [42, 1.5, ["classification"], int])
def test_non_callable_rejected(bad: object) -> None:
    with pytest.raises(TypeError, match="operator"):
        resolve_operator(bad)


def test_custom_callables_accepted_and_called() -> None:
    def g(model, inputs, targets):
        return tf.reduce_sum(model(inputs) * targets, axis=-1) * 2.0

    op = resolve_operator(g)
    assert not op.builtin and op.name == "g" and op.target_kind == "any"
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y = np.eye(3, dtype=np.float32)[[0, 2]]
    np.testing.assert_allclose(op(lambda v: v, x, y).numpy(), [0.0, 10.0])
    with pytest.raises(TypeError, match="custom"):
        op.scores_from_outputs(tf.constant(x), tf.constant(y))
    # variants with defaults, *args, callables objects, tf.function, builtins without signature
    resolve_operator(lambda m, x, y, scale=1.0: x)
    resolve_operator(lambda *args: args[1])
    resolve_operator(tf.function(lambda m, x, y: x))
    resolve_operator(max)

    class Scorer:
        def __call__(self, model, inputs, targets):
            return inputs

    assert resolve_operator(Scorer()).name == "Scorer"


@pytest.mark.parametrize(
    "bad",
    [lambda m, x: x, lambda m: m, lambda m, x, y, z: x, lambda m, x, y, *, k: x],
)
def test_custom_callables_with_wrong_arity_rejected(bad: object) -> None:
    with pytest.raises(TypeError, match=r"operator .*three positional arguments"):
        resolve_operator(bad)


def test_operator_passthrough() -> None:
    op = resolve_operator("regression")
    assert resolve_operator(op) is op and isinstance(op, Operator)


# ---------------------------------------------------------------------------------- numerics


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_vector_scores(task: str) -> None:
    rng = np.random.default_rng(0)
    out = rng.normal(size=(5, 7)).astype(np.float32)
    tgt = rng.normal(size=(5, 7)).astype(np.float32)
    expected = [float(np.dot(out[i].astype(np.float64), tgt[i])) for i in range(5)]
    np.testing.assert_allclose(scores(task, out, tgt), expected, rtol=1e-5, atol=1e-5)
    # through __call__ with a model
    op = resolve_operator(task)
    np.testing.assert_allclose(
        op(lambda x: x * 2.0, out, tgt).numpy(), 2 * np.array(expected), rtol=1e-5, atol=1e-5
    )


def test_vector_scores_higher_rank_and_rank1() -> None:
    rng = np.random.default_rng(1)
    out = rng.normal(size=(3, 4, 5)).astype(np.float32)
    per_class = rng.normal(size=(3, 5)).astype(np.float32)
    full = rng.normal(size=(3, 4, 5)).astype(np.float32)
    exp_class = [sum(out[i, a] @ per_class[i] for a in range(4)) for i in range(3)]
    exp_full = [np.sum(out[i] * full[i]) for i in range(3)]
    np.testing.assert_allclose(
        scores("classification", out, per_class), exp_class, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(scores("classification", out, full), exp_full, rtol=1e-5, atol=1e-5)
    flat = rng.normal(size=(4,)).astype(np.float32)
    np.testing.assert_allclose(
        scores("regression", flat, np.ones((4, 1), np.float32)), flat, rtol=1e-6
    )


def test_segmentation_scores() -> None:
    rng = np.random.default_rng(2)
    out = rng.normal(size=(3, 6, 5, 2)).astype(np.float32)
    mask = (rng.uniform(size=out.shape) < 0.3).astype(np.float32) * rng.uniform(
        1, 2, size=out.shape
    )
    mask = mask.astype(np.float32)
    mask[2] = 0.0  # empty mask -> 0
    expected = []
    for i in range(3):
        nonzero = sum(1 for v in mask[i].ravel() if v != 0)
        total = sum(float(o) * float(m) for o, m in zip(out[i].ravel(), mask[i].ravel()))
        expected.append(total / nonzero if nonzero else 0.0)
    got = scores("semantic segmentation", out, mask)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert got[2] == 0.0 and np.all(np.isfinite(got))


def box(x1, y1, x2, y2, obj=1.0, classes=(1.0, 0.0)):
    return [x1, y1, x2, y2, obj, *classes]


def test_detection_identical_boxes() -> None:
    pred = np.array([[box(0, 0, 2, 2, obj=0.5)]], np.float32)
    tgt = np.array([box(0, 0, 2, 2, obj=0.9)], np.float32)  # (N, D); own objectness ignored
    iou = 4.0 / (4.0 + 1e-4)
    sim = 1.0 / (1.0 + 1e-4)
    expected = {
        Tasks.OBJECT_DETECTION: iou * 0.5 * sim,
        Tasks.OBJECT_DETECTION_BOX_POSITION: iou,
        Tasks.OBJECT_DETECTION_BOX_PROBA: iou * 0.5,
        Tasks.OBJECT_DETECTION_BOX_CLASS: iou * sim,
    }
    for task, value in expected.items():
        np.testing.assert_allclose(scores(task, pred, tgt), [value], rtol=1e-6)


def test_detection_partial_disjoint_best_and_average() -> None:
    pred = np.array([[box(1, 1, 3, 3), box(10, 10, 11, 11), box(0, 0, 2, 1)]], np.float32)
    # partial: target (0,0,2,2) vs (1,1,3,3): inter 1, union 7; vs (0,0,2,1): inter 2, union 4
    # -> best 2/4
    one = np.array([[box(0, 0, 2, 2)]], np.float32)
    np.testing.assert_allclose(
        scores(Tasks.OBJECT_DETECTION_BOX_POSITION, pred, one), [2 / (4 + 1e-4)], rtol=1e-6
    )
    # disjoint target -> 0; two targets averaged
    far = box(20, 20, 21, 22)
    two = np.array([[box(0, 0, 2, 2), far]], np.float32)
    np.testing.assert_allclose(
        scores(Tasks.OBJECT_DETECTION_BOX_POSITION, pred, two), [1 / (4 + 1e-4)], rtol=1e-6
    )
    np.testing.assert_allclose(
        scores(Tasks.OBJECT_DETECTION_BOX_POSITION, pred, np.array([[far]], np.float32)), [0.0]
    )


def test_detection_padding_and_empty() -> None:
    pred = np.array([[box(0, 0, 2, 2, obj=0.8), [0.0] * 7]], np.float32)
    tgt = np.array([[box(0, 0, 2, 2), [0.0] * 7, [0.0] * 7]], np.float32)
    unpadded = scores(Tasks.OBJECT_DETECTION, pred[:, :1], tgt[:, :1])
    np.testing.assert_allclose(scores(Tasks.OBJECT_DETECTION, pred, tgt), unpadded, rtol=1e-7)
    assert unpadded[0] > 0.7
    zeros = np.zeros_like(tgt)
    for task in DETECTION_TASKS:
        assert scores(task, pred, zeros)[0] == 0.0  # no target box
        assert scores(task, np.zeros_like(pred), tgt)[0] == 0.0  # no predicted box
        assert scores(task, np.zeros_like(pred), zeros)[0] == 0.0


def test_detection_padding_never_wins_a_negative_max() -> None:
    # class logits of opposite sign: the only real prediction scores < 0; a padding row must not
    # give 0.
    pred = np.array([[box(0, 0, 2, 2, classes=(-1.0, 0.0)), [0.0] * 7]], np.float32)
    tgt = np.array([[box(0, 0, 2, 2, classes=(1.0, 0.0))]], np.float32)
    got = scores(Tasks.OBJECT_DETECTION_BOX_CLASS, pred, tgt)
    np.testing.assert_allclose(
        got, ref_detection(pred, tgt, Tasks.OBJECT_DETECTION_BOX_CLASS), rtol=1e-6
    )
    assert got[0] < -0.99


@pytest.mark.parametrize("task", DETECTION_TASKS)
def test_detection_random_against_loops(task: Tasks) -> None:
    rng = np.random.default_rng(3)
    preds = random_boxes(rng, batch=6, count=7, classes=3, pad=0.25)
    targets = random_boxes(rng, batch=6, count=4, classes=3, pad=0.3)
    targets[0] = 0.0
    preds[1] = 0.0
    expected = ref_detection(preds, targets, task)
    np.testing.assert_allclose(scores(task, preds, targets), expected, rtol=2e-5, atol=1e-6)
    assert np.count_nonzero(expected) >= 4  # the random case is not trivially zero


def test_builtins_trace_in_tf_function() -> None:
    rng = np.random.default_rng(4)
    preds = random_boxes(rng, 4, 5, 2, pad=0.2)
    targets = random_boxes(rng, 4, 3, 2, pad=0.2)
    vectors = (
        rng.normal(size=(4, 5, 7)).astype(np.float32),
        rng.normal(size=(4, 7)).astype(np.float32),
    )
    masks = rng.normal(size=(4, 5, 7)).astype(np.float32), np.ones((4, 5, 7), np.float32)
    cases = [(t, (preds, targets)) for t in DETECTION_TASKS]
    cases += [(Tasks.CLASSIFICATION, vectors), (Tasks.SEMANTIC_SEGMENTATION, masks)]
    for task, (preds, targets) in cases:
        op = resolve_operator(task)
        traced = tf.function(op.scores_from_outputs)
        np.testing.assert_allclose(
            traced(tf.constant(preds), tf.constant(targets)).numpy(),
            op.scores_from_outputs(tf.constant(preds), tf.constant(targets)).numpy(),
            rtol=1e-6,
            atol=1e-7,
        )


# ---------------------------------------------------------------------------------- validation


def validate(op: Operator, targets: object, n: int, shape: tuple) -> np.ndarray:
    """The targets checked against the operator's kind (the objective's rules, tasks.py)."""
    return validate_targets(targets, n, shape, op.target_kind, op.name)


def test_validate_targets_vector() -> None:
    op = resolve_operator(None)
    y = np.eye(4, dtype=np.float64)[[1, 3, 0]]
    got = validate(op, y, 3, (3, 4))
    assert got.dtype == np.float32 and got.shape == (3, 4)
    assert validate(op, np.ones((3, 2, 4)), 3, (7, 2, 4)).shape == (3, 2, 4)
    assert validate(op, np.ones(3), 3, (3,)).shape == (3, 1)
    with pytest.raises(ValueError, match=r"targets has shape \(3, 5\).*\(3, 4\)"):
        validate(op, np.ones((3, 5)), 3, (3, 4))
    with pytest.raises(ValueError, match=r"targets has shape \(2, 4\).*first dimension of 3"):
        validate(op, np.ones((2, 4)), 3, (3, 4))
    with pytest.raises(ValueError, match="targets: an array of dtype .* expected numbers"):
        validate(op, np.array([["a"] * 4] * 3), 3, (3, 4))
    with pytest.raises(ValueError, match="targets: 12 NaN or infinite"):
        validate(op, np.full((3, 4), np.nan), 3, (3, 4))


def test_validate_targets_segmentation_and_boxes() -> None:
    seg = resolve_operator("semantic segmentation")
    assert validate(seg, np.ones((2, 5, 6, 3)), 2, (1, 5, 6, 3)).shape == (2, 5, 6, 3)
    with pytest.raises(ValueError, match=r"targets has shape \(2, 5, 6\).*\(2, 5, 6, 3\)"):
        validate(seg, np.ones((2, 5, 6)), 2, (1, 5, 6, 3))
    det = resolve_operator("object detection")
    assert validate(det, np.ones((2, 8)), 2, (1, 10, 8)).shape == (2, 1, 8)
    assert validate(det, np.ones((2, 3, 8)), 2, (1, 10, 8)).shape == (2, 3, 8)
    with pytest.raises(ValueError, match=r"targets has shape \(2, 7\)"):
        validate(det, np.ones((2, 7)), 2, (1, 10, 8))
    with pytest.raises(ValueError, match=r"model outputs have shape \(1, 8\)"):
        validate(det, np.ones((2, 8)), 2, (1, 8))
    custom = resolve_operator(lambda m, x, y: x)
    assert validate(custom, np.ones((2, 9, 9)), 2, (2, 3)).shape == (2, 9, 9)


def test_validate_scores() -> None:
    op = resolve_operator(lambda m, x, y: x)
    assert op.validate_scores(np.arange(4.0), 4).shape == (4,)
    out = op.validate_scores(tf.ones((4, 1), tf.float64), 4)
    assert out.shape == (4,) and out.dtype == tf.float32
    with pytest.raises(ValueError, match=r"operator '<lambda>' returned scores of shape \(4, 2\)"):
        op.validate_scores(np.ones((4, 2)), 4)
    with pytest.raises(ValueError, match=r"shape \(3,\) for a batch of 4"):
        op.validate_scores(np.ones(3), 4)
    with pytest.raises(ValueError, match="not a numeric tensor"):
        op.validate_scores(object(), 4)


def test_default_targets() -> None:
    outputs = np.array([[0.1, 0.7, 0.2], [3.0, -1.0, 2.0]], np.float32)
    expected = np.zeros((2, 3), np.float32)
    for i, row in enumerate(outputs):
        expected[i, int(np.argmax(row))] = 1.0
    np.testing.assert_array_equal(default_targets(outputs), expected)
    objective = OperatorObjective(None)
    np.testing.assert_array_equal(objective.resolve_targets(None, outputs, None), expected)
    assert default_targets(np.ones(5)).shape == (5, 1)
    for task in ["semantic segmentation", *DETECTION_TASKS]:
        with pytest.raises(ValueError, match="targets=None is not supported"):
            OperatorObjective(task).resolve_targets(None, outputs, None)
