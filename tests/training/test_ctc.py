"""The CTC loss the plate reader is trained with, against first principles."""

import itertools
import math

import numpy as np
import pytest

from training.ctc import log_softmax, loss_and_gradient


def brute_force_probability(logits, label):
    """P(label) summed over every path of classes that collapses to it (repeats merged,
    blanks dropped); a label position of several classes matches any of them."""
    p = np.exp(log_softmax(logits.astype(np.float64)))
    steps, classes = p.shape
    total = 0.0
    for path in itertools.product(range(classes), repeat=steps):
        collapsed = [k for i, k in enumerate(path) if k != 0 and (i == 0 or k != path[i - 1])]
        if len(collapsed) == len(label) and all(k in chars for k, chars in zip(collapsed, label)):
            total += math.prod(p[t, k] for t, k in enumerate(path))
    return total


@pytest.mark.parametrize("label", [[[1]], [[1], [2]], [[1], [1]], [[2], [1, 3]], [[1, 2], [1, 2]]])
def test_the_loss_is_minus_log_of_every_alignment_summed(label):
    logits = np.random.default_rng(len(label)).normal(size=(5, 4))
    loss, _ = loss_and_gradient(logits, label)
    assert loss == pytest.approx(-math.log(brute_force_probability(logits, label)), rel=1e-9)


def test_the_gradient_matches_finite_differences():
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(9, 5))
    label = [[1], [3, 4], [3], [2]]
    _, grad = loss_and_gradient(logits, label)
    numeric = np.zeros_like(logits)
    h = 1e-6
    for index in np.ndindex(*logits.shape):
        up, down = logits.copy(), logits.copy()
        up[index] += h
        down[index] -= h
        numeric[index] = (loss_and_gradient(up, label)[0] - loss_and_gradient(down, label)[0]) / (2 * h)
    assert np.allclose(grad, numeric, atol=1e-6)


def test_a_repeated_character_needs_a_blank_between():
    # "11" in three steps has one path (1, blank, 1); in two steps none.
    logits = np.zeros((3, 3))
    loss, _ = loss_and_gradient(logits, [[1], [1]])
    assert loss == pytest.approx(-math.log(1 / 27))
    with pytest.raises(ValueError, match="does not fit"):
        loss_and_gradient(np.zeros((3, 3)), [[1], [2], [1], [2]])
    with pytest.raises(ValueError, match="does not fit"):
        loss_and_gradient(np.zeros((2, 3)), [[1], [1]])
