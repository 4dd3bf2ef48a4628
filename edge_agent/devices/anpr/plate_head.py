"""The plate reader: a CTC head over the line reader's own features, trained on plates.

PP-OCR's line reader ends in one linear layer from 120 features per time step to
18,710 characters of many scripts; everything before it (the network proper) sees the
glyphs. The plate reader is a second such layer over the same features, to the 36
characters plates carry, started from the reader's own weights for those characters and
trained on plate lines (`training/plate_head.py`): on the real photos the general layer
reads 5DJ0529 as BDJ0529 with certainty 1.0; plate fonts, not prose, decide here.

Both layers read each line from one run of the network (`PpOcr.read_lines`), so the
plate reading costs a matrix product. Its weights (`plate_head.npz`, about 20 kB) ship
with the agent; nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

WEIGHTS_FILE = "plate_head.npz"
# The reader's tensor the head reads: the features entering its last linear layer
# (the name PaddleOCR's ONNX export gives it in PP-OCRv6_rec_small.onnx).
FEATURES = "p2o.pd_op.transpose.8.0"


@dataclass(frozen=True)
class PlateHead:
    weights: Any  # float32 (features, classes)
    bias: Any  # float32 (classes,)
    classes: str  # the characters after CTC's blank (class 0)

    @classmethod
    def load(cls, path: Any = None) -> PlateHead:
        """The shipped head, or the one at `path` (an .npz with weights, bias, classes)."""
        import numpy as np

        source = path or resources.files(__package__) / WEIGHTS_FILE
        with source.open("rb") as f:
            saved = np.load(f)
            head = cls(weights=saved["weights"].astype(np.float32), bias=saved["bias"].astype(np.float32),
                       classes=str(saved["classes"]))
        if head.weights.shape[1] != len(head.classes) + 1 or head.bias.shape != (len(head.classes) + 1,):
            raise ValueError(f"plate head: {head.weights.shape[1]} classes but {len(head.classes)} characters + blank")
        return head

    def read(self, features: Any) -> tuple[str, float]:
        """One line's text and score (the mean probability of the characters kept) from
        the reader's features, one row per time step."""
        return ctc_greedy(probabilities(features @ self.weights + self.bias), self.classes)

    def save(self, path: Any) -> None:
        import numpy as np

        np.savez(path, weights=self.weights.astype(np.float32), bias=self.bias.astype(np.float32),
                 classes=np.array(self.classes))


def probabilities(logits: Any) -> Any:
    import numpy as np

    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def ctc_greedy(steps: Any, classes: Sequence[str]) -> tuple[str, float]:
    """The likeliest class per time step, repeats merged and blanks (class 0) dropped;
    `classes` names the classes after the blank."""
    best, probability = steps.argmax(axis=1), steps.max(axis=1)
    chars, kept = [], []
    previous = -1
    for index, p in zip(best.tolist(), probability.tolist()):
        if index != previous and index != 0:
            chars.append(classes[index - 1])
            kept.append(p)
        previous = index
    return "".join(chars), (sum(kept) / len(kept) if kept else 0.0)
