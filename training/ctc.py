"""Connectionist temporal classification (CTC) loss and its gradient, in numpy.

For one line: `logits` (time steps x classes, class 0 the blank) and the label as a
list of sets of classes, one set per character, any of which is right (a US record's 0
may be printed as the letter O). The loss is -log P(label | logits): the probability of
every path of classes that collapses (repeats merged, blanks dropped) to one of the
label's spellings, summed by the forward-backward recursion in log space for each
spelling; the gradient is with respect to the logits: softmax minus each class's
expected occupancy.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

_NEG = -1e30  # log(0), kept finite so that sums stay defined
MAX_SPELLINGS = 64


def log_softmax(logits: Any) -> Any:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def loss_and_gradient(logits: Any, label: Sequence[Sequence[int]]) -> tuple[float, Any]:
    """(loss, d loss / d logits) of one line. The spellings of a label are disjoint
    events (they collapse to different strings), so their probabilities add; each
    spelling's gradient counts by its share of the total."""
    logp = log_softmax(logits.astype(np.float64))
    spellings = list(itertools.islice(itertools.product(*label), MAX_SPELLINGS))
    if len(spellings) == 1:
        log_likelihood, expected = _one_spelling(logp, spellings[0])
        return -log_likelihood, np.exp(logp) - expected
    results = [_one_spelling(logp, spelling) for spelling in spellings]
    likelihoods = np.array([ll for ll, _ in results])
    total = np.logaddexp.reduce(likelihoods)
    shares = np.exp(likelihoods - total)
    expected = sum(share * occupancy for share, (_, occupancy) in zip(shares, results))
    return float(-total), np.exp(logp) - expected


def _one_spelling(logp: Any, label: Sequence[int]) -> tuple[float, Any]:
    """(log P(label), each class's expected occupancy given the label) by forward-backward;
    the label must fit the time steps (a repeated character needs a blank between)."""
    steps, classes = logp.shape
    states = [0]
    for char in label:
        states += [char, 0]
    n = len(states)
    repeats = sum(a == b for a, b in zip(label, label[1:]))
    if steps < len(label) + repeats:
        raise ValueError(f"a label of {len(label)} characters does not fit {steps} time steps")
    emit = logp[:, states]
    # A state may be reached from two back when it is a character unlike the one before.
    skip_in = np.array([i >= 2 and states[i] != 0 and states[i] != states[i - 2] for i in range(n)])
    skip_out = np.array([i + 2 < n and states[i + 2] != 0 and states[i + 2] != states[i] for i in range(n)])
    alpha = np.full((steps, n), _NEG)
    beta = np.full((steps, n), _NEG)
    alpha[0, :2] = emit[0, :2]
    for t in range(1, steps):
        a = alpha[t - 1]
        one = np.concatenate([[_NEG], a[:-1]])
        two = np.where(skip_in, np.concatenate([[_NEG, _NEG], a[:-2]]), _NEG)
        alpha[t] = np.logaddexp(np.logaddexp(a, one), two) + emit[t]
    beta[-1, -2:] = emit[-1, -2:]
    for t in range(steps - 2, -1, -1):
        b = beta[t + 1]
        one = np.concatenate([b[1:], [_NEG]])
        two = np.where(skip_out, np.concatenate([b[2:], [_NEG, _NEG]]), _NEG)
        beta[t] = np.logaddexp(np.logaddexp(b, one), two) + emit[t]
    log_likelihood = float(np.logaddexp(alpha[-1, -1], alpha[-1, -2]))
    occupancy = np.exp(alpha + beta - emit - log_likelihood)  # P(state at t | label)
    expected = np.zeros((steps, classes))
    for i, char in enumerate(states):
        expected[:, char] += occupancy[:, i]
    return log_likelihood, expected
