"""Plate recognition behind one interface: the camera's own read, or local OCR.

    recognizer.recognize(image_bgr) -> list[Candidate]   best first, maybe empty

`CameraReported` wraps the text an ANPR camera already sent (the image is not looked
at). `LocalRecognizer` reads plates from a picture for cameras that only give video or
snapshots. It looks in stages, cheapest first, and stops at the first read it is sure
of: the OCR engine's text detector on the whole picture scaled down; then the plate-
shaped regions an OpenCV localiser proposes (dark characters on a bright, wide
rectangle: a horizontal-gradient "blackhat" map closed into blobs), each at full size;
then the detector on the whole picture at full size, in overlapping tiles (`_detect`).
Every text line found is read from the full-size picture, straightened
(`_straightened`), whatever the scale it was found at, by the general reader and by
the plate reader trained on plates (`plate_head.py`, `line_text`). A site chooses per
camera (`CameraConfig.recognition = "camera" | "local"`).

The OCR engine is PaddleOCR's PP-OCR text detector and line reader, as the ONNX files
the `rapidocr` wheel ships, run on onnxruntime by `ppocr.PpOcr` (the wheel's Python
side is never imported); nothing is downloaded at run time. The engine loads on first
use only: a site with camera-side recognition never loads onnxruntime.

onnxruntime allocates the detector's activations (tens of MB) afresh at each call and
frees them after. glibc keeps freed heap memory for reuse, so the process kept the
peak of every call it had made. Loading the engine therefore has glibc serve
allocations over 1 MiB by mmap, which go back to the system when freed
(benchmarks/anpr_memory.py measures both; the README has the figures).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import itertools
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from edge_agent.devices.anpr.plate_head import PlateHead
from edge_agent.devices.anpr.ppocr import LineRead, PpOcr
from edge_agent.plates.grammars import GRAMMAR, TABLE, Grammar, Reading
from edge_agent.plates.normal_form import coerce_to_formats, format_countries, normalize_plate

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # x, y, width, height in the image's pixels

# What a plate's text can look like once separators are stripped: 4..10 characters,
# letters and digits, at least one digit (no European or US truck plate is all
# letters), and not a long run of digits (timestamps and phone numbers on trucks).
_MIN_LEN, _MAX_LEN = 4, 10
_LONG_DIGITS = re.compile(r"^\d{8,}$")
# What a plate's line may hold as the general reader reads it.
_PLATE_CHARACTERS = re.compile(r"[A-Za-z0-9 .·:-]+")
# Camera overlays print the date and time; their pieces must not pass for plates.
_DATE_OR_TIME = re.compile(r"(19|20)\d\d\s*[-./]\s*[01]?\d|\d\d?\s*:\s*\d\d")

# How a line's read is weighted by what the grammar makes of it (`plate_reading`): a
# reading of a home country's format is the likeliest plate, one of any other known
# format a little less, a text of no known format (a vanity plate, a foreign one, or
# a slogan) less again. Each look-alike swap the grammar made costs a little; a read
# that fits only once the character at one end is dropped (a sticker, a screw or a
# frame's edge read as a character) counts less than one fitting as read.
HOME_FIT_WEIGHT = 1.0
FIT_WEIGHT = 0.97
FOREIGN_FIT_WEIGHT = 0.94  # a site with home countries: another country's format
UNKNOWN_WEIGHT = 0.93
# A look-alike swap the grammar makes costs more than a format's fit gains: on the real
# photos the reader's own choice between look-alikes was right more often than the
# format's (08E6CK fits no US format, 0BE6CK does), so swaps only break ties.
HOME_SWAP_WEIGHT = 0.92
SWAP_WEIGHT = 0.9
TRIMMED_WEIGHT = 0.95
# A read of no known format holding five letters in a row is more likely a word on a
# sign or a truck's side ("24 HR VIDEO") than a plate.
_WORD = re.compile(r"[A-Z]{5,}")
WORD_WEIGHT = 0.9
ROW_ALONE_WEIGHT = 0.9
BAND_SWAP_WEIGHT = 0.98
WIDE_GAP_HEIGHTS = 3.0  # two lines this many line heights apart may still be one plate
MIN_LINE_PX = 8  # a line lower than this is too small to read
MAX_LINE_ASPECT = 8.0
TILE_OVERLAP_PX = 240  # wider than a plate in the full-size pictures the tiles are for
MAX_SWAPS = 2  # look-alike swaps beyond which a fit is a guess (as coerce_to_formats)


@dataclass(frozen=True)
class Candidate:
    text: str  # normal form
    confidence: float  # 0..1
    alternatives: tuple[str, ...] = ()  # other plausible readings, normal form
    box: Box | None = None
    raw: str = ""  # as the engine or camera gave it
    countries: tuple[str, ...] = ()


class PlateRecognizer(Protocol):
    def recognize(self, image_bgr: Any) -> list[Candidate]: ...


# --------------------------------------------------------------------------- camera side


@dataclass(frozen=True)
class CameraReported:
    """The camera already read the plate; recognition is a formality."""

    text: str
    confidence: float | None = None

    # With no figure from the camera, a read fitting a known shape is trusted a bit more.
    DEFAULT_CONFIDENCE = 0.8
    DEFAULT_CONFIDENCE_KNOWN_FORMAT = 0.9

    def recognize(self, image_bgr: Any = None) -> list[Candidate]:
        text = normalize_plate(self.text)
        if not text:
            return []
        countries = format_countries(text)
        confidence = self.confidence
        if confidence is None:
            confidence = self.DEFAULT_CONFIDENCE_KNOWN_FORMAT if countries else self.DEFAULT_CONFIDENCE
        alternatives = tuple(dict.fromkeys(t for t, _ in coerce_to_formats(text) if t != text))
        return [Candidate(text=text, confidence=float(confidence), alternatives=alternatives, raw=self.text,
                          countries=countries)]


# --------------------------------------------------------------------------- local


@dataclass
class LocalRecognizer:
    """OpenCV localisation + PP-OCR. Thread-safe; the engine loads on first use."""

    max_side_px: int = 1600
    max_regions: int = 4
    whole_first: bool = True  # False: only the localised regions (for tests of the localiser)
    sure_score: float = 0.85  # a read this sure ends the looking
    # The detector's looks at the whole picture, by the longer side it is scaled to
    # (0: as read, at most max_side_px); the first before the localiser's regions, the
    # others after. Its cost grows with the pixels: on the real photos a first look at
    # 800 px settles four frames in five for a third of the full-size look's time
    # (benchmarks/anpr.py).
    detect_sides: tuple[int, ...] = (800, 0)
    threads: int = 1  # onnxruntime's threads: a lane's reads take one core, not all
    min_score: float = 0.5  # OCR line score below which a reading is not a candidate
    release_large_buffers: bool = True  # False only to measure what it saves
    # Resolves look-alikes by position and ranks reads; a site passes one with its home
    # countries (`Grammar(TABLE, home=("SRB", "NMK"))`) so their formats and spelling win.
    grammar: Grammar = GRAMMAR
    # Lines the general reader reads as plate-like characters are taken as the plate
    # reader (plate_head.py) reads them. False: the general reader alone (to train the
    # plate reader, and to measure what it adds).
    plate_reader: bool = True
    tile_px: int = 800  # the detector looks at larger pictures in tiles of at most this a side
    _engine: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def recognize(self, image_bgr: Any) -> list[Candidate]:
        if image_bgr is None or getattr(image_bgr, "size", 0) == 0:
            return []
        image, scale = _downscale(image_bgr, self.max_side_px)
        found: list[Candidate] = []
        for look in self._looks(image):
            found += look()
            if any(self._settled(c) for c in found):
                break
        if self.release_large_buffers:
            hand_back_free_heap()
        return _rank(found, scale)

    def _looks(self, image: Any) -> Iterator[Callable[[], list[Candidate]]]:
        """The ways of looking at a frame, cheapest first; each only if those before it
        settled nothing.

        The OCR's own text detector on the whole picture, scaled down, finds most plates
        (its cost grows with the pixels). The OpenCV localiser's plate-shaped regions come
        next, each looked at in full size: for plates too small or too faint for the
        detector at that scale. Last the detector on the whole picture at a larger scale.
        """
        sides = self.detect_sides if self.whole_first else ()
        if sides:
            yield lambda: self._detect_and_read(image, sides[0])
        yield lambda: self._read_regions(image)
        for side in sides[1:]:
            yield lambda side=side: self._detect_and_read(image, side)

    def _read_regions(self, image: Any) -> list[Candidate]:
        import cv2

        found = []
        for box in localise(image)[: self.max_regions]:
            # The detector on the region and around it (the localiser's box may hold only
            # part of the plate's row), at full size.
            region, offset = _around(image, box)
            found += self._detect_and_read(region, 0, offset)
            # And the box as one text line (recognition only), upscaled towards the
            # recogniser's 48 px line height: for a row the detector does not see as text.
            crop, offset = _crop(image, box, margin=0.12)
            factor = max(1.0, 64 / crop.shape[0])
            if factor > 1.0:
                crop = cv2.resize(crop, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
            found += self._read(crop, offset, 1.0 / factor, region_bonus=0.97)
        return found

    def _settled(self, cand: Candidate) -> bool:
        """A read good enough that no further look is needed."""
        # A fit to a home format is no sign here: with the home's spelling and trimming,
        # many a misread fits one.
        return cand.confidence >= self.sure_score or (not self.grammar.home and bool(format_countries(cand.text)))

    def warm_up(self) -> None:
        self.engine()

    def engine(self) -> PpOcr:
        with self._lock:
            if self._engine is None:
                if self.release_large_buffers:
                    serve_large_allocations_by_mmap()
                self._engine = PpOcr.load(threads=self.threads,
                                          plate_head=PlateHead.load() if self.plate_reader else None)
            return self._engine

    def _detect_and_read(self, image: Any, side: int, offset: tuple[int, int] = (0, 0)) -> list[Candidate]:
        """The detector's text lines at this scale, each read from the full-size frame."""
        small, factor = _downscale(image, side) if side else (image, 1.0)
        quads = self._detect(small)
        crops, boxes = [], []
        for quad in quads:
            quad = quad / factor
            crop = _straightened(image, quad)
            if crop is None or not _line_could_be_plate(crop.shape[1], crop.shape[0]):
                continue
            xs, ys = quad[:, 0], quad[:, 1]
            crops.append(crop)
            boxes.append((int(xs.min()) + offset[0], int(ys.min()) + offset[1],
                          int(xs.max() - xs.min()), int(ys.max() - ys.min())))
        lines = [(text, score, box) for (text, score), box in zip(self._read_lines(crops), boxes)]
        return _candidates(lines + self._band_lines(image, lines, offset), 1.0, self.min_score, self.grammar)

    def _detect(self, image: Any) -> list[Any]:
        """The detector's lines in the picture, looked for in overlapping tiles of at
        most `tile_px` a side when it is larger: the detector's working memory grows
        with the pixels (about 270 MB for a 1600x1200 frame in one piece, 70 MB for
        800x600). A line cut by a tile's inner edge is taken from the tile that holds it
        whole (the tiles overlap by more than a plate is wide at that scale)."""
        height, width = image.shape[:2]
        xs, tile_w = tile_spans(width, self.tile_px, TILE_OVERLAP_PX)
        ys, tile_h = tile_spans(height, self.tile_px, TILE_OVERLAP_PX)
        if len(xs) == 1 and len(ys) == 1:
            return self.engine().detect(image)
        quads: list[Any] = []
        for y in ys:
            for x in xs:
                for quad in self.engine().detect(image[y:y + tile_h, x:x + tile_w]):
                    if not _cut_by_inner_edge(quad, (x, y, tile_w, tile_h), (width, height)):
                        quads.append(quad + (x, y))
        return _distinct(quads)

    def _band_lines(self, image: Any, lines: list[tuple[str, float, Box]],
                    offset: tuple[int, int]) -> list[tuple[str, float, Box]]:
        """The country codes on the blue bands beside the lines that could be plates, read
        as lines of their own (`_band_code` finds them). The detector seldom sees a band's
        letters: a fifth of the characters' height, on blue."""
        places = []
        likely = sorted((line for line in lines if line[1] >= self.min_score and _plausible(normalize_plate(line[0]))),
                        key=lambda line: -line[1])
        for _text, _score, (x, y, w, h) in likely[:BANDS_LOOKED_FOR]:
            found = _band(image, (x - offset[0], y - offset[1], w, h))
            if found is not None:
                places.append(found)
        if not places:
            return []
        # The general reader: the plate reader learnt plates' characters, not the band's
        # small letters (it reads NMK's as MK).
        reads = self.engine().read([crop for crop, _ in places])
        return [(text, score, (bx + offset[0], by + offset[1], bw, bh))
                for (text, score), (_, (bx, by, bw, bh)) in zip(reads, places)]

    def _read_lines(self, crops: list[Any]) -> list[tuple[str, float]]:
        """Each crop read as one text line: as a plate where it looks like one."""
        reads = self.engine().read_lines(crops) if crops else []
        return [line_text(line) if self.plate_reader else (line.text, line.score) for line in reads]

    def _read(self, image: Any, offset: tuple[int, int], to_image: float, region_bonus: float) -> list[Candidate]:
        """The whole of `image` read as one text line (a localised region)."""
        height, width = image.shape[:2]
        whole = (int(offset[0]), int(offset[1]), int(width * to_image), int(height * to_image))
        lines = [(text, score, whole) for text, score in self._read_lines([image])]
        return _candidates(lines, region_bonus, self.min_score, self.grammar)


# glibc's mallopt parameter for the mmap threshold (M_MMAP_THRESHOLD in malloc.h).
_M_MMAP_THRESHOLD = -3
LARGE_ALLOCATION_BYTES = 1 << 20


def serve_large_allocations_by_mmap(threshold: int = LARGE_ALLOCATION_BYTES) -> bool:
    """Make glibc hand freed allocations of `threshold` bytes or more back to the system.

    Process-wide, and a fixed threshold ends glibc's own adjustment of it; so it is set
    only where local recognition runs. Elsewhere than glibc it does nothing.
    """
    try:
        done = bool(_libc().mallopt(_M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        done = False
    if not done:
        log.info("ocr_memory_release_unavailable reason=%s", "no glibc mallopt")
    return done


@functools.cache
def _libc() -> Any:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def hand_back_free_heap() -> bool:
    """Return the free pages inside glibc's heap to the system (malloc_trim).

    Smaller buffers than the mmap threshold, freed after a frame, leave holes below
    memory still in use that glibc keeps; a frame's many small ones add up to ~15 MB.
    Returns whether anything was handed back; elsewhere than glibc it does nothing.
    """
    try:
        return bool(_libc().malloc_trim(0))
    except (OSError, AttributeError):
        return False


_SHARED: dict[tuple[str, ...], LocalRecognizer] = {}
_SHARED_LOCK = threading.Lock()


def shared_local_recognizer(home: tuple[str, ...] = ()) -> LocalRecognizer:
    """One engine per process, whatever the home countries: the networks take ~80 MB
    once loaded, lanes must not each load them. `home`: the site's plate countries."""
    with _SHARED_LOCK:
        if home not in _SHARED:
            engine = next((r._engine for r in _SHARED.values() if r._engine is not None), None)
            _SHARED[home] = LocalRecognizer(grammar=Grammar(TABLE, home=home) if home else GRAMMAR, _engine=engine)
            _SHARED[home].engine()  # loaded now, so that the next home shares it
        return _SHARED[home]


def localise(image_bgr: Any) -> list[Box]:
    """Plate-shaped regions, most plate-like first.

    Plates are rows of dark strokes on a bright background: a morphological blackhat
    keeps dark detail narrower than the kernel, its horizontal gradient fires on
    character edges, and a wide closing joins a plate's characters into one blob.
    Blobs with a plate's aspect ratio (EU 520x110 mm = 4.7, US 2:1, two-line plates
    ~1.5) and a plausible size are kept, scored by how bright the inside is.
    """
    import cv2
    import numpy as np

    gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY) if image_bgr.ndim == 3 else image_bgr
    height, width = gray.shape[:2]
    rect = cv2.getStructuringElement(cv2.MORPH_RECT, (max(13, width // 60), max(5, height // 120)))
    blackhat = cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, rect)
    grad = np.absolute(cv2.Sobel(blackhat, cv2.CV_32F, 1, 0, ksize=3))
    peak = float(grad.max())
    if peak <= 0:
        return []
    grad = (255 * grad / peak).astype("uint8")
    grad = cv2.GaussianBlur(grad, (5, 5), 0)
    grad = cv2.morphologyEx(grad, cv2.MORPH_CLOSE, rect)
    _, mask = cv2.threshold(grad, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    mask = cv2.erode(mask, None, iterations=2)
    mask = cv2.dilate(mask, None, iterations=2)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    scored: list[tuple[float, Box]] = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        if h < 8 or w < 30 or w > 0.9 * width or h > 0.5 * height:
            continue
        aspect = w / h
        if not 1.5 <= aspect <= 7.0:
            continue
        fill = cv2.contourArea(contour) / float(w * h)
        inside = gray[y:y + h, x:x + w]
        brightness = float(inside.mean()) / 255.0
        scored.append((fill * (0.5 + brightness) * min(1.0, aspect / 3.0), (x, y, w, h)))
    scored.sort(key=lambda s: -s[0])
    return [box for _, box in scored]


def decode_jpeg(data: bytes) -> Any:
    """A JPEG (or PNG) into a BGR array, or None when it does not decode."""
    import cv2
    import numpy as np

    if not data:
        return None
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    return image if image is not None and image.size else None


# --------------------------------------------------------------------------- internals


def line_text(line: LineRead) -> tuple[str, float]:
    """A line's text and score: the plate reader's when the general reader read plate
    characters (letters, digits, separators; no date or time), else the general read.

    The plate reader knows only the plate alphabet, so a camera's timestamp or a word
    in another script would come out of it as a plausible plate: which lines are plates
    is the general reader's call, what they say the plate reader's.
    """
    if line.plate_text and _PLATE_CHARACTERS.fullmatch(line.text) and not _DATE_OR_TIME.search(line.text) \
            and _MIN_LEN - 1 <= len(normalize_plate(line.text)) <= _MAX_LEN + 1:
        return line.plate_text, line.plate_score
    return line.text, line.score


def _candidates(lines: list[tuple[str, float, Box]], bonus: float, min_score: float,
                grammar: Grammar = GRAMMAR) -> list[Candidate]:
    out = []
    # Detection may split one plate into pieces ("BG", "123-AA"): also try each pair of
    # lines side by side on the same text line, left to right. Any pair, not neighbours
    # in reading order: boxes of different heights on one row sort apart.
    pieces = list(lines)
    rows_of: dict[Box, tuple[Box, Box]] = {}  # a two-row join's box: its rows' boxes
    for (t1, s1, b1), (t2, s2, b2) in itertools.permutations(lines, 2):
        same_row = abs((b1[1] + b1[3] / 2) - (b2[1] + b2[3] / 2)) < 0.5 * max(b1[3], b2[3])
        gap = (b2[0] - (b1[0] + b1[2])) / max(1, b1[3], b2[3])
        # Boxes may overlap a little; a US plate's state emblem or a sticker can stand
        # between its two halves: a wider gap still joins, trusted less.
        # One plate's characters are of one height (detection boxes vary by up to 2x).
        alike = max(b1[3], b2[3]) < 2 * min(b1[3], b2[3])
        if same_row and alike and b1[0] < b2[0] and -0.5 < gap < WIDE_GAP_HEIGHTS:
            merged_box = (b1[0], min(b1[1], b2[1]), b2[0] + b2[2] - b1[0], max(b1[3], b2[3]))
            pieces.append((f"{t1} {t2}", min(s1, s2) * (0.97 if gap < 1.5 else 0.9), merged_box))
        elif _stacked(b1, b2):
            # A two-row plate (a trailer's, a motorcycle's): upper row first.
            merged_box = (min(b1[0], b2[0]), b1[1], max(b1[0] + b1[2], b2[0] + b2[2]) - min(b1[0], b2[0]),
                          b2[1] + b2[3] - b1[1])
            pieces.append((f"{t1} {t2}", min(s1, s2) * 0.97, merged_box))
            rows_of[merged_box] = (b1, b2)
    for raw, score, box in pieces:
        text = normalize_plate(raw)
        if score < min_score or not _plausible(text) or _DATE_OR_TIME.search(raw):
            continue
        band = _band_code(box, lines, grammar)
        # The band's word on the country against the formats': a read fitting a home
        # format as it is outweighs a band (a US plate's blue art may pass for one) that
        # needs a swap.
        reading, weight = max(filter(None, [band and band_reading(text, grammar, band), plate_reading(text, grammar)]),
                              key=lambda found: found[1])
        if text.isdigit():
            weight *= 0.85  # overlays and phone numbers are digits; few truck plates are
        if not reading.countries and _WORD.search(reading.text):
            weight *= WORD_WEIGHT  # a run of letters as long as a word: signs and slogans
        # The grammar's reading leads; the engine's own text and the look-alike fixes
        # to the Western Balkans shapes stay as alternatives (association is
        # confusion-aware anyway).
        fixes = [f for f, _ in coerce_to_formats(text) if _changes(f, text) <= 2]
        alternatives = tuple(t for t in dict.fromkeys([text, *fixes]) if t != reading.text)
        out.append(Candidate(text=reading.text, confidence=round(min(1.0, score * weight * bonus), 4),
                             alternatives=alternatives, box=box, raw=raw, countries=reading.countries))
    # A row that makes a known format with the row above or below it is half a plate:
    # alone it ranks below the two rows together.
    halves = {row for cand in out if cand.box in rows_of and cand.countries for row in rows_of[cand.box]}
    return [replace(c, confidence=round(c.confidence * ROW_ALONE_WEIGHT, 4)) if c.box in halves else c
            for c in out]


def plate_reading(text: str, grammar: Grammar = GRAMMAR) -> tuple[Reading, float]:
    """The likeliest reading of a plausible line read (normal form), and its weight.

    The read as it is, or without its first or its last character when only that fits
    a known format: the state name's initial, a sticker or the frame's screw read as a
    character beside the plate's own. Look-alikes are resolved by position, and a home
    country's spelling (US records write O as 0) is applied at no cost.

    A site with home countries changes a read (a look-alike swap, a dropped end
    character) only towards a home format: with forty countries' formats in the table
    almost any misread fits some foreign one after a swap, so a foreign fit counts only
    as read. Without home countries any known format may justify a change.
    """
    respell = str.maketrans({old: new for c in grammar.countries if c.code in grammar.home
                             for old, new in c.spelling})
    # The read as it is, of no known format, unless something below does better.
    best = (Reading(text=text.translate(respell), countries=(), probability=1.0, score=1.0, changed=0),
            UNKNOWN_WEIGHT)
    for variant, trimmed in ((text, False), (text[1:], True), (text[:-1], True)):
        if trimmed and not _plausible(variant):
            continue
        for reading in grammar.resolve_text(variant, limit=6):
            home = bool(grammar.home.intersection(reading.countries))
            swaps = _changes(reading.text, variant.translate(respell) if home else variant)
            if (trimmed or swaps) and not (home if grammar.home else reading.countries):
                continue
            if swaps > MAX_SWAPS or (trimmed and swaps):
                continue
            if home:
                weight = HOME_FIT_WEIGHT * HOME_SWAP_WEIGHT ** swaps
            else:
                fit = FOREIGN_FIT_WEIGHT if grammar.home else FIT_WEIGHT
                weight = (fit if reading.countries else UNKNOWN_WEIGHT) * SWAP_WEIGHT ** swaps
            weight *= TRIMMED_WEIGHT if trimmed else 1.0
            if weight > best[1]:
                best = (reading, weight)
    return best


# The EU band's blue in OpenCV's HSV (hue 0..180): reflex blue is about 110.
_BAND_HUE = (100, 130)
_BAND_MIN_SATURATION, _BAND_MIN_VALUE = 90, 50
BANDS_LOOKED_FOR = 2  # beside the surest lines that could be plates


def _band(image: Any, box: Box) -> tuple[Any, Box] | None:
    """The lower part of a blue band to the left of a line of characters (where the
    country code is printed), upscaled for the reader, and its box; None when no band.

    The band is the run of mostly blue columns nearest the characters, within three
    character heights to their left; its code is in its lower half.
    """
    import cv2
    import numpy as np

    x, y, w, h = box
    x0, x1 = max(0, int(x - 3 * h)), max(0, int(x + 0.2 * h))
    y0, y1 = max(0, int(y - 0.4 * h)), min(image.shape[0], int(y + 1.4 * h))
    region = image[y0:y1, x0:x1]
    if region.size == 0 or region.ndim != 3:
        return None
    hsv = cv2.cvtColor(region, cv2.COLOR_BGR2HSV)
    blue = cv2.inRange(hsv, (_BAND_HUE[0], _BAND_MIN_SATURATION, _BAND_MIN_VALUE), (_BAND_HUE[1], 255, 255)) > 0
    # A band's column is blue for the plate's height, less its white letters and stars.
    columns = np.flatnonzero(blue.mean(axis=0) > 0.25)
    if columns.size == 0:
        return None
    right = int(columns[-1])
    left = right
    blue_columns = set(columns.tolist())
    # No wider than a band (about half the characters' height): a blue truck's body
    # may run on beyond it.
    while left - 1 in blue_columns and right - left < 0.7 * h:
        left -= 1
    if right - left + 1 < max(3, 0.15 * h):
        return None
    rows = np.flatnonzero(blue[:, left:right + 1].mean(axis=1) > 0.4)
    if rows.size == 0 or rows[-1] - rows[0] < 0.8 * h:
        return None  # a blue patch, not a band as tall as the plate
    # The code's letters may reach the band's edges: a little of what is beside it too.
    margin = int(0.1 * h) + 1
    left, right = max(0, left - margin), min(region.shape[1] - 1, right + margin)
    top, bottom = int(rows[0] + 0.55 * (rows[-1] - rows[0])), int(rows[-1]) + 1
    crop = region[top:bottom, left:right + 1]
    factor = max(1.0, 48 / max(1, crop.shape[0]))
    crop = cv2.resize(crop, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    return crop, (x0 + left, y0 + top, right - left + 1, bottom - top)


def _band_code(box: Box, lines: list[tuple[str, float, Box]], grammar: Grammar) -> str:
    """The country code on the plate's band beside a line (or a plate's rows), when a
    line of smaller characters just to its left, level with it or below, reads as one."""
    x, y, w, h = box
    for text, _score, (bx, by, bw, bh) in lines:
        code = normalize_plate(text)
        if bh >= h or not code.isalpha() or code not in grammar.codes:
            continue
        left = x - 3.0 * h <= bx and bx + bw <= x + 0.3 * h
        level = y <= by + bh / 2 <= y + 1.5 * h
        if left and level:
            return code
    return ""


def band_reading(text: str, grammar: Grammar, code: str) -> tuple[Reading, float] | None:
    """The reading of a line in the format of the country its plate's band names, and
    its weight; None when no format of that country fits within `MAX_SWAPS` look-alikes.

    The band is the plate's own word on where it is from, so a look-alike swap towards
    that country's format costs little (`BAND_SWAP_WEIGHT`) and other countries' formats
    are not considered.
    """
    fits = [r for r in _country_grammar(grammar, code).resolve_text(text, limit=6)
            if r.countries and _changes(r.text, text) <= MAX_SWAPS]
    if not fits:
        return None
    best = min(fits, key=lambda r: _changes(r.text, text))
    return replace(best, countries=(code,)), HOME_FIT_WEIGHT * BAND_SWAP_WEIGHT ** _changes(best.text, text)


@functools.lru_cache(maxsize=64)
def _country_grammar(grammar: Grammar, code: str) -> Grammar:
    return Grammar([c for c in grammar.countries if c.code == code], home=(code,))


def _stacked(upper: Box, lower: Box) -> bool:
    """Whether two lines could be the rows of one two-row plate: `lower` just below
    `upper`, of a like height, their middles within half the wider one's width."""
    (x1, y1, w1, h1), (x2, y2, w2, h2) = upper, lower
    gap = y2 - (y1 + h1)
    middles_apart = abs((x1 + w1 / 2) - (x2 + w2 / 2))
    return (max(h1, h2) < 1.6 * min(h1, h2) and -0.3 * h1 < gap < 0.8 * max(h1, h2)
            and middles_apart < 0.5 * max(w1, w2))


def _changes(a: str, b: str) -> int:
    return sum(x != y for x, y in zip(a, b))


def _plausible(text: str) -> bool:
    if not _MIN_LEN <= len(text) <= _MAX_LEN:
        return False
    return any(c.isdigit() for c in text) and not _LONG_DIGITS.match(text)


def _rank(found: list[Candidate], scale: float) -> list[Candidate]:
    best: dict[str, Candidate] = {}
    for cand in found:
        if cand.text not in best or cand.confidence > best[cand.text].confidence:
            best[cand.text] = cand
    ranked = sorted(best.values(), key=lambda c: -c.confidence)
    out = []
    for i, cand in enumerate(ranked):
        others = [c.text for c in ranked if c.text != cand.text][:4] if i == 0 else []
        alternatives = tuple(dict.fromkeys([*cand.alternatives, *others]))[:6]
        box = cand.box
        if box is not None and scale != 1.0:
            box = tuple(int(v / scale) for v in box)  # type: ignore[assignment]
        out.append(Candidate(text=cand.text, confidence=cand.confidence, alternatives=alternatives, box=box,
                             raw=cand.raw, countries=cand.countries))
    return out


def tile_spans(length: int, tile: int, overlap: int) -> tuple[list[int], int]:
    """(starts, size) of the fewest tiles of at most `tile` pixels covering `length`,
    each overlapping the next by at least `overlap`, all of one size."""
    if length <= tile:
        return [0], length
    count = -(-(length - overlap) // (tile - overlap))
    size = -(-(length + (count - 1) * overlap) // count)
    step = (length - size) / (count - 1)
    return [round(i * step) for i in range(count)], size


def _cut_by_inner_edge(quad: Any, tile: Box, picture: tuple[int, int], margin: float = 2.0) -> bool:
    """Whether a line found in a tile touches one of the tile's edges that is not also
    the picture's (the line may go on in the next tile)."""
    x, y, w, h = tile
    xs, ys = quad[:, 0], quad[:, 1]
    return bool((x > 0 and xs.min() <= margin) or (y > 0 and ys.min() <= margin)
                or (x + w < picture[0] and xs.max() >= w - 1 - margin)
                or (y + h < picture[1] and ys.max() >= h - 1 - margin))


def _distinct(quads: list[Any]) -> list[Any]:
    """The lines with those found twice (whole in two overlapping tiles) kept once: a
    line whose centre lies in a kept line's box, of a like size, is that line."""
    kept: list[Any] = []
    for quad in sorted(quads, key=lambda q: -float(_area(q))):
        cx, cy = quad[:, 0].mean(), quad[:, 1].mean()
        if not any(k[:, 0].min() <= cx <= k[:, 0].max() and k[:, 1].min() <= cy <= k[:, 1].max()
                   and _area(quad) > 0.5 * _area(k) for k in kept):
            kept.append(quad)
    return sorted(kept, key=lambda q: (round(float(q[0][1]) / 10), float(q[0][0])))


def _area(quad: Any) -> float:
    return float((quad[:, 0].max() - quad[:, 0].min()) * (quad[:, 1].max() - quad[:, 1].min()))


def _downscale(image: Any, max_side_px: int) -> tuple[Any, float]:
    import cv2

    side = max(image.shape[:2])
    if side <= max_side_px:
        return image, 1.0
    scale = max_side_px / side
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), scale


def _line_could_be_plate(width: int, height: int) -> bool:
    """Whether a text line of this shape could hold a plate, before it is read.

    One row of a plate: 4 to 10 characters, each about half as wide as tall (on the
    photos the plate's line is 1.7 to 3.2 times as wide as tall; an EU plate's up to
    about 6); the date on a camera's overlay or a slogan's long line is wider.
    """
    return height >= MIN_LINE_PX and 1.0 <= width / height <= MAX_LINE_ASPECT


def _straightened(image: Any, quad: Any) -> Any:
    """The detector's (possibly tilted) quadrilateral, warped to an upright text line."""
    import cv2
    import numpy as np

    quad = quad.astype(np.float32)
    width = int(max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[2] - quad[3])))
    height = int(max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2])))
    if width < 4 or height < 4 or height > 1.5 * width:
        return None  # a vertical line of text: no plate reads top to bottom
    upright = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    warp = cv2.getPerspectiveTransform(quad, upright)
    return cv2.warpPerspective(image, warp, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def _around(image: Any, box: Box) -> tuple[Any, tuple[int, int]]:
    """The localiser's box with half its width to each side and one and a half of its
    height above and below."""
    x, y, w, h = box
    x0, y0 = max(0, int(x - 0.5 * w)), max(0, int(y - 1.5 * h))
    x1, y1 = min(image.shape[1], int(x + 1.5 * w)), min(image.shape[0], int(y + 2.5 * h))
    return image[y0:y1, x0:x1], (x0, y0)


def _crop(image: Any, box: Box, margin: float) -> tuple[Any, tuple[int, int]]:
    x, y, w, h = box
    dx, dy = int(w * margin / 2), int(h * margin)
    x0, y0 = max(0, x - dx), max(0, y - dy)
    x1, y1 = min(image.shape[1], x + w + dx), min(image.shape[0], y + h + dy)
    return image[y0:y1, x0:x1], (x0, y0)
