"""PP-OCR's text detector and line reader on onnxruntime, and nothing else.

The networks are the ones the `rapidocr` wheel ships (PaddleOCR's PP-OCR, as ONNX
files in its `models/` folder); they are run here directly, without importing that
package: its Python side (configuration, geometry and imaging libraries, ~30 MB
resident) is not needed to run two networks. Nothing is downloaded.

    ocr = PpOcr.load()
    quads = ocr.detect(image_bgr)        # text lines, four corners each, image pixels
    reads = ocr.read([crop, ...])        # [(text, score 0..1)], one per upright crop
    lines = ocr.read_lines([crop, ...])  # the same, and each line read as a plate

Detection is Differentiable Binarization (DB): the network gives each pixel a
probability of being text; pixels over `THRESHOLD`, dilated, form regions, each kept
when its mean probability is over `BOX_THRESHOLD`, as its minimum-area rectangle grown
by area x `UNCLIP_RATIO` / perimeter on every side (the network is trained to mark a
shrunken text core). The reader is a CTC line recogniser on 48-pixel-high lines: per
time step the likeliest class; repeats merged, blanks dropped; the score is the mean
probability of the characters kept. The plate reader (`plate_head`) is a second last
layer over the reader's features, read from the same run.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from edge_agent.devices.anpr import onnx_wire
from edge_agent.devices.anpr.plate_head import FEATURES, PlateHead, ctc_greedy

DETECTOR_FILE = "PP-OCRv6_det_small.onnx"
READER_FILE = "PP-OCRv6_rec_small.onnx"
THRESHOLD = 0.3  # a pixel's text probability over this is text
BOX_THRESHOLD = 0.5  # a region's mean probability under this is not a line
UNCLIP_RATIO = 1.6
MIN_SIDE = 3  # regions thinner than this (network pixels) are noise
MAX_REGIONS = 1000
LINE_HEIGHT = 48  # the reader's input height
MIN_LINE_WIDTH = 320
BATCH = 6  # lines read in one run, padded to the widest of them
IN_MEMORY_DIR = Path("/dev/shm")  # a tmpfs on Debian and Raspberry Pi OS


def models_dir() -> Path:
    """Where the `rapidocr` wheel keeps its networks, found without importing it."""
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the rapidocr package (which ships the PP-OCR networks) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class LineRead(NamedTuple):
    text: str  # as the general reader reads it
    score: float
    plate_text: str  # as the plate reader reads it ("" without one)
    plate_score: float


@dataclass
class PpOcr:
    detector: Any  # onnxruntime.InferenceSession
    reader: Any  # with the features as a second output when there is a plate head
    characters: list[str]  # the reader's classes: blank, the dictionary, space
    plate_head: PlateHead | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, directory: Path | None = None, threads: int = 1, plate_head: PlateHead | None = None) -> PpOcr:
        """The networks; with `plate_head`, the reader also gives its features (the
        plate head reads them)."""
        import onnxruntime

        directory = directory or models_dir()
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        # Without the arena, activations are freed after each run rather than kept for
        # the largest frame seen (recognition.serve_large_allocations_by_mmap hands them back).
        options.enable_cpu_mem_arena = False
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        detector = onnxruntime.InferenceSession(str(directory / DETECTOR_FILE), options, providers=providers)
        reader = _reader_session(directory / READER_FILE, options, providers, features=plate_head is not None)
        dictionary = reader.get_modelmeta().custom_metadata_map.get("character", "")
        characters = ["", *dictionary.splitlines(), " "]
        classes = reader.get_outputs()[0].shape[-1]
        if isinstance(classes, int) and classes != len(characters):
            raise ValueError(f"the reader has {classes} classes but its dictionary {len(characters)}")
        return cls(detector=detector, reader=reader, characters=characters, plate_head=plate_head)

    def detect(self, image_bgr: Any) -> list[Any]:
        """Text lines in the picture as given (no scaling beyond the network's multiple
        of 32): float32 arrays of four corners, clockwise from the top left."""
        import cv2
        import numpy as np

        height, width = image_bgr.shape[:2]
        net_h, net_w = max(32, round(height / 32) * 32), max(32, round(width / 32) * 32)
        resized = cv2.resize(image_bgr, (net_w, net_h))
        batch = _normalised(resized)[np.newaxis]
        with self._lock:
            (probability,) = self.detector.run(None, {self.detector.get_inputs()[0].name: batch})
        return _lines_from_map(probability[0, 0], width / net_w, height / net_h)

    def read(self, crops: list[Any]) -> list[tuple[str, float]]:
        """Each crop read as one line of text, in its order."""
        return [(line.text, line.score) for line in self.read_lines(crops)]

    def read_lines(self, crops: list[Any]) -> list[LineRead]:
        """Each crop read as one line of text, in its order, by the general reader and
        (with a plate head) as a plate."""
        import numpy as np

        order = sorted(range(len(crops)), key=lambda i: crops[i].shape[1] / max(1, crops[i].shape[0]))
        out: list[LineRead] = [LineRead("", 0.0, "", 0.0)] * len(crops)
        for start in range(0, len(order), BATCH):
            chunk = order[start:start + BATCH]
            widest = max([MIN_LINE_WIDTH / LINE_HEIGHT] + [crops[i].shape[1] / max(1, crops[i].shape[0])
                                                           for i in chunk])
            batch = np.stack([_line_input(crops[i], int(LINE_HEIGHT * widest)) for i in chunk])
            with self._lock:
                outputs = self.reader.run(None, {self.reader.get_inputs()[0].name: batch})
            for k, i in enumerate(chunk):
                text, score = ctc_greedy(outputs[0][k], self.characters[1:])
                plate_text, plate_score = ("", 0.0)
                if self.plate_head is not None:
                    plate_text, plate_score = self.plate_head.read(outputs[1][k])
                out[i] = LineRead(text, score, plate_text, plate_score)
        return out

    def features(self, crop: Any) -> Any:
        """The reader's features for one line, one row per time step (for training a
        plate head; needs one loaded)."""
        if self.plate_head is None:
            raise ValueError("the reader gives its features only when loaded with a plate head")
        width = max(MIN_LINE_WIDTH, math.ceil(LINE_HEIGHT * crop.shape[1] / max(1, crop.shape[0])))
        with self._lock:
            outputs = self.reader.run(None, {self.reader.get_inputs()[0].name: _line_input(crop, width)[None]})
        return outputs[1][0]


def _reader_session(path: Path, options: Any, providers: list[str], *, features: bool) -> Any:
    """The line reader's session; with `features`, the reader's per-step features as a
    second output (`onnx_wire.with_output`).

    onnxruntime keeps about 20 MB more of a model handed to it as bytes than of one it
    reads from a file, so the edited model goes through a file in memory (/dev/shm where
    there is one: nothing is written to the board's storage), deleted once loaded.
    """
    import tempfile

    import onnxruntime

    if not features:
        return onnxruntime.InferenceSession(str(path), options, providers=providers)
    in_memory = IN_MEMORY_DIR if IN_MEMORY_DIR.is_dir() else None
    with tempfile.NamedTemporaryFile(suffix=".onnx", dir=in_memory) as edited:
        edited.write(onnx_wire.with_output(path.read_bytes(), FEATURES))
        edited.flush()
        return onnxruntime.InferenceSession(edited.name, options, providers=providers)


def _normalised(image_bgr: Any) -> Any:
    """HWC uint8 BGR to CHW float32 in -1..1, as the networks were trained."""
    import numpy as np

    return ((image_bgr.astype(np.float32) / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)


def _line_input(crop: Any, width: int) -> Any:
    """A crop scaled to the reader's height, keeping its proportions (at most `width`
    wide), normalised and padded with zeros on the right to `width`."""
    import cv2
    import numpy as np

    h, w = crop.shape[:2]
    scaled_w = min(width, math.ceil(LINE_HEIGHT * w / max(1, h)))
    line = _normalised(cv2.resize(crop, (max(1, scaled_w), LINE_HEIGHT)))
    padded = np.zeros((3, LINE_HEIGHT, width), np.float32)
    padded[:, :, :line.shape[2]] = line
    return padded


def _lines_from_map(probability: Any, to_x: float, to_y: float) -> list[Any]:
    """The text regions of a DB probability map, as rectangles in image pixels."""
    import cv2
    import numpy as np

    mask = cv2.dilate((probability > THRESHOLD).astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(mask * 255, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    map_h, map_w = probability.shape
    quads = []
    for contour in contours[:MAX_REGIONS]:
        (cx, cy), (rw, rh), angle = cv2.minAreaRect(contour)
        if min(rw, rh) < MIN_SIDE or _mean_inside(probability, cv2.boxPoints(((cx, cy), (rw, rh), angle))) \
                < BOX_THRESHOLD:
            continue
        grow = rw * rh * UNCLIP_RATIO / (2 * (rw + rh))
        rw, rh = rw + 2 * grow, rh + 2 * grow
        if min(rw, rh) < MIN_SIDE + 2:
            continue
        corners = cv2.boxPoints(((cx, cy), (rw, rh), angle))
        corners[:, 0] = np.clip(np.round(corners[:, 0] * to_x), 0, map_w * to_x - 1)
        corners[:, 1] = np.clip(np.round(corners[:, 1] * to_y), 0, map_h * to_y - 1)
        quad = _clockwise(corners)
        if np.linalg.norm(quad[0] - quad[1]) <= 3 or np.linalg.norm(quad[0] - quad[3]) <= 3:
            continue
        quads.append(quad)
    # Top to bottom, then left to right, as lines are read.
    return sorted(quads, key=lambda q: (round(float(q[0][1]) / 10), float(q[0][0])))


def _mean_inside(probability: Any, corners: Any) -> float:
    import cv2
    import numpy as np

    h, w = probability.shape
    x0, x1 = int(np.clip(np.floor(corners[:, 0].min()), 0, w - 1)), int(np.clip(np.ceil(corners[:, 0].max()), 0, w - 1))
    y0, y1 = int(np.clip(np.floor(corners[:, 1].min()), 0, h - 1)), int(np.clip(np.ceil(corners[:, 1].max()), 0, h - 1))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    cv2.fillPoly(mask, [(corners - [x0, y0]).astype(np.int32)], 1)
    return float(cv2.mean(probability[y0:y1 + 1, x0:x1 + 1], mask)[0])


def _clockwise(points: Any) -> Any:
    """Four corners as top-left, top-right, bottom-right, bottom-left."""
    import numpy as np

    by_x = points[np.argsort(points[:, 0])]
    left, right = by_x[:2], by_x[2:]
    top_left, bottom_left = left[np.argsort(left[:, 1])]
    top_right, bottom_right = right[np.argsort(right[:, 1])]
    return np.array([top_left, top_right, bottom_right, bottom_left], dtype=np.float32)
