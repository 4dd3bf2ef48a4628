"""A plate camera that renders European plates and pushes ANPR events over HTTP.

It comes in through the same door as a real camera: an HTTP POST to the lane
listener's `/anpr/<camera-id>`, in the Hikvision ISAPI format (multipart/form-data with
the EventNotificationAlert XML or JSON, a plate crop and a scene JPEG), in Dahua's ITSAPI
traffic snapshot format (JSON with the plate, the vehicle's colour and type, and the
plate crop and scene in base64; `keep_alive()` sends its heartbeat) or in the project's
generic JSON format, with Basic or Digest authentication when configured.

The pictures are drawn with OpenCV: a white reflective plate with the blue EU band
(or a blue band for the Western Balkans countries' own plates) and the country code, dark
condensed characters, a border, then placed on the front of a tractor or the rear of a
trailer with a perspective tilt, blur, sensor noise, uneven light and JPEG compression.

    >>> camera = AnprCameraSimulator("http://127.0.0.1:8081/", "hikvision", "L1-front", seed=1)
    >>> camera.push("BG 123-AA", role="tractor", ocr_errors=1, lane="L1")
    200
"""

from __future__ import annotations

import json
import random
import string
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from edge_agent.devices.anpr.auth import Authenticator
from edge_agent.devices.anpr.dahua import build_keepalive, build_tollgate
from edge_agent.devices.anpr.generic import build_generic
from edge_agent.devices.anpr.hikvision import build_alert_xml, build_multipart
from edge_agent.ids import new_id
from edge_agent.plates.normal_form import CONFUSABLE_GROUPS, format_countries, normalize_plate

# --------------------------------------------------------------------------- plate texts

_L = string.ascii_uppercase
_BIH = "AEJKMOT"
_CYRILLIC_BG = "АВЕКМНОРСТУХ"  # Bulgarian plates use only these (look-alikes of Latin)

# Region codes as printed (a sample, enough for realistic collisions between plates).
_REGIONS = {
    "SRB": ["BG", "NS", "NI", "KG", "SU", "ZR", "PA", "VA", "KV", "SA", "CA", "UE", "PO", "SM", "ŠA", "ČA"],
    "NMK": ["SK", "BT", "KU", "OH", "TE", "ST", "VE", "GV", "KO", "PP", "SR", "DE"],
    "AL": ["TR", "DR", "EL", "FR", "KO", "SH", "VL", "LE", "KU", "BR"],
    "MNE": ["PG", "NK", "BD", "BR", "HN", "KO", "BA", "UL", "TV", "PV"],
    "TR": [f"{n:02d}" for n in range(1, 82)],
    "BG": ["СА", "СВ", "РВ", "В", "А", "Е", "ВТ", "КН", "РА", "Х"],
    "D": ["M", "B", "HH", "K", "F", "S", "DO", "DU", "N", "HB"],
    "HR": ["ZG", "ST", "RI", "OS", "ZD", "PU", "SB", "VŽ"],
}
COUNTRIES = ("RKS", "AL", "SRB", "NMK", "MNE", "BIH", "TR", "BG", "D", "PL", "HR", "RO", "GR", "A")
FORMATS = ("hikvision", "dahua", "generic")  # the push formats the camera speaks
_VEHICLE_COLORS = ("White", "Red", "Blue", "Gray", "Black", "Green", "Yellow")
WESTERN_BALKANS = ("RKS", "AL", "SRB", "NMK", "MNE", "BIH")


def random_plate(rng: random.Random, country: str | None = None) -> tuple[str, str]:
    """(country, plate as printed with its separators) in that country's format."""
    country = country or rng.choice(COUNTRIES)
    def digit(n):
        return "".join(rng.choice(string.digits) for _ in range(n))
    def letters(n, pool=_L):
        return "".join(rng.choice(pool) for _ in range(n))
    region = rng.choice(_REGIONS[country]) if country in _REGIONS else ""
    text = {
        "RKS": lambda: f"0{rng.randint(1, 7)} {digit(3)}-{letters(2)}",
        "AL": lambda: f"{letters(2)} {digit(3)} {letters(2)}",
        "SRB": lambda: f"{region} {digit(rng.choice((3, 4)))}-{letters(2)}",
        "NMK": lambda: f"{region} {digit(4)} {letters(2)}",
        "MNE": lambda: f"{region} {letters(rng.choice((1, 2)))} {digit(3)}",
        "BIH": lambda: f"{letters(1, _BIH)}{digit(2)}-{letters(1, _BIH)}-{digit(3)}",
        "TR": lambda: f"{region} {letters(rng.choice((2, 3)))} {digit(rng.choice((2, 3)))}",
        "BG": lambda: f"{region} {digit(4)} {letters(2, _CYRILLIC_BG)}",
        "D": lambda: f"{region} {letters(2)} {rng.randint(1, 9999)}",
        "PL": lambda: f"{letters(2)} {digit(5)}",
        "HR": lambda: f"{region} {digit(4)}-{letters(2)}",
        "RO": lambda: f"{letters(1)} {digit(3)} {letters(3)}",
        "GR": lambda: f"{letters(3)}-{digit(4)}",
        "A": lambda: f"W {digit(5)} {letters(1)}",
    }[country]()
    return country, text


_PARTNERS = {c: group.replace(c, "") for group in CONFUSABLE_GROUPS for c in group}


def confuse(text: str, errors: int, rng: random.Random) -> str:
    """`text` with `errors` characters swapped for a look-alike (separators kept)."""
    chars = list(text)
    positions = [i for i, c in enumerate(chars) if c.upper() in _PARTNERS]
    for i in rng.sample(positions, min(errors, len(positions))):
        chars[i] = rng.choice(_PARTNERS[chars[i].upper()])
    return "".join(chars)


def corrupt(text: str, rate: float, rng: random.Random, *, confusable_share: float = 0.8,
            indel_share: float = 0.05) -> str:
    """An OCR-like misreading: each letter or digit wrong with probability `rate`.

    A wrong character is a look-alike swap (`confusable_share`, where the character has
    a look-alike), a dropped or an extra character (`indel_share`), else any other
    character. OCR errors on plates are mostly look-alikes; the shares are parameters so
    a benchmark can say which mix it measured.
    """
    out = []
    alphabet = _L + string.digits
    for c in text:
        # Separators are not characters of the plate: OCR errors are counted on the rest.
        if not c.isalnum() or rng.random() >= rate:
            out.append(c)
            continue
        roll = rng.random()
        if roll < indel_share:
            if rng.random() < 0.5:
                continue  # dropped
            out.append(c + rng.choice(alphabet))  # an extra character
        elif roll < indel_share + confusable_share and c.upper() in _PARTNERS:
            out.append(rng.choice(_PARTNERS[c.upper()]))
        else:
            out.append(rng.choice([a for a in alphabet if a != c.upper()]))
    return "".join(out)


# --------------------------------------------------------------------------- rendering

_BAND_BLUE = (153, 51, 0)  # BGR of the EU band's blue (Pantone Reflex Blue, roughly)
_STAR_YELLOW = (0, 204, 255)


def render_plate(text: str, country: str, rng: random.Random, *, height_px: int = 110, rows: int = 1) -> Any:
    """A frontal plate image (BGR), characters condensed: one row 520:110 like an EU
    plate, or two rows 340:220 like a trailer's or a motorcycle's square plate (the
    first group of the text on the upper row, the rest below)."""
    import cv2
    import numpy as np

    scale = 4  # draw big, then shrink: smooth edges like a photographed print
    h, w = (110 * scale, 520 * scale) if rows == 1 else (220 * scale, 340 * scale)
    paper = rng.randint(225, 250)
    plate = np.full((h, w, 3), paper, np.uint8)
    band_w = 44 * scale
    cv2.rectangle(plate, (0, 0), (band_w, h), _BAND_BLUE, -1)
    centre = (band_w // 2, int(110 * scale * 0.32))
    for k in range(12):  # the ring of twelve stars, as dots
        angle = 2 * np.pi * k / 12
        star = (int(centre[0] + 0.28 * band_w * np.cos(angle)), int(centre[1] + 0.28 * band_w * np.sin(angle)))
        cv2.circle(plate, star, max(2, band_w // 22), _STAR_YELLOW, -1, cv2.LINE_AA)
    code = country[:3]
    font_scale = 1.0 * scale * (0.9 if len(code) < 3 else 0.7)
    (cw, _ch), _ = cv2.getTextSize(code, cv2.FONT_HERSHEY_DUPLEX, font_scale, 2 * scale)
    cv2.putText(plate, code, ((band_w - cw) // 2, h - int(110 * scale * 0.12)), cv2.FONT_HERSHEY_DUPLEX,
                font_scale, (255, 255, 255), 2 * scale, cv2.LINE_AA)
    ink = rng.randint(10, 45)
    lines = [_printable(text)] if rows == 1 else _two_rows(_printable(text))
    row_h = h // len(lines)
    for i, line in enumerate(lines):
        _draw_row(plate, line, band_w + 8 * scale, w - 8 * scale, i * row_h, row_h, paper, ink, scale)
    cv2.rectangle(plate, (2 * scale, 2 * scale), (w - 2 * scale, h - 2 * scale), (20, 20, 20), 2 * scale)
    out = cv2.resize(plate, (int(height_px * w / h), height_px), interpolation=cv2.INTER_AREA)
    return out


def _two_rows(text: str) -> list[str]:
    """A plate's text split over two rows: its first group above, the rest below."""
    head, _, rest = text.partition(" ")
    if rest:
        return [head, rest]
    half = (len(text) + 1) // 2
    return [text[:half], text[half:]]


def _draw_row(plate: Any, text: str, x_from: int, x_to: int, y0: int, row_h: int, paper: int, ink: int,
              scale: int) -> None:
    """One row of characters: a heavy stroke font drawn wide, then squeezed to a plate
    font's proportions (EU plates use the narrow DIN 1451-like FE-Schrift)."""
    import cv2
    import numpy as np

    h = 110 * scale
    glyphs = np.full((h, 4 * h, 3), paper, np.uint8)
    thickness = int(7.5 * scale)
    font_scale = 2.6 * scale
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, font_scale, thickness)
    glyphs = np.full((h, max(4 * h, tw + 40 * scale), 3), paper, np.uint8)
    cv2.putText(glyphs, text, (10 * scale, (h + th) // 2), cv2.FONT_HERSHEY_DUPLEX, font_scale,
                (ink, ink, ink), thickness, cv2.LINE_AA)
    used = tw + 20 * scale
    room = x_to - x_from
    squeezed = cv2.resize(glyphs[:, :used], (min(room, int(used * 0.62)), row_h), interpolation=cv2.INTER_AREA)
    x0 = x_from + (room - squeezed.shape[1]) // 2
    area = plate[y0:y0 + row_h, x0:x0 + squeezed.shape[1]]
    plate[y0:y0 + row_h, x0:x0 + squeezed.shape[1]] = np.minimum(area, squeezed)


def render_scene(plate_img: Any, rng: random.Random, *, role: str = "tractor", size: tuple[int, int] = (1280, 720),
                 plate_width_px: int | None = None) -> tuple[Any, Any]:
    """The plate on a truck in the lane: returns (scene BGR, plate crop BGR)."""
    import cv2
    import numpy as np

    width, height = size
    scene = np.zeros((height, width, 3), np.uint8)
    sky = rng.randint(90, 170)
    scene[:] = (sky, sky, sky)
    cv2.rectangle(scene, (0, int(height * 0.75)), (width, height), (70, 72, 75), -1)  # asphalt
    body = tuple(int(v) for v in rng.choice([(40, 40, 160), (200, 200, 200), (120, 60, 20), (30, 30, 30),
                                              (20, 110, 20), (190, 190, 40)]))
    x0, x1 = int(width * 0.15), int(width * 0.85)
    cv2.rectangle(scene, (x0, int(height * 0.05)), (x1, int(height * 0.8)), body, -1)
    if role == "trailer":  # rear doors, hinges, tail lamps
        cv2.line(scene, (width // 2, int(height * 0.05)), (width // 2, int(height * 0.7)), (50, 50, 50), 4)
        for x in (x0 + 30, x1 - 90):
            cv2.rectangle(scene, (x, int(height * 0.68)), (x + 60, int(height * 0.74)), (0, 0, 200), -1)
    else:  # grille and headlamps
        for y in range(int(height * 0.45), int(height * 0.62), 14):
            cv2.line(scene, (x0 + 120, y), (x1 - 120, y), (25, 25, 25), 6)
        for x in (x0 + 20, x1 - 120):
            cv2.rectangle(scene, (x, int(height * 0.55)), (x + 100, int(height * 0.62)), (230, 230, 230), -1)
    pw = plate_width_px or rng.randint(int(width * 0.16), int(width * 0.3))
    ph = int(pw * plate_img.shape[0] / plate_img.shape[1])
    plate = cv2.resize(plate_img, (pw, ph), interpolation=cv2.INTER_AREA)
    # Perspective: the camera looks down and a little sideways at the plate.
    def jitter(a):
        return rng.uniform(-a, a)
    src = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]])
    dx, dy = pw * 0.06, ph * 0.12
    dst = np.float32([[jitter(dx), jitter(dy)], [pw + jitter(dx), jitter(dy)],
                      [pw + jitter(dx), ph + jitter(dy)], [jitter(dx), ph + jitter(dy)]])
    px = int(width / 2 - pw / 2 + jitter(width * 0.08))
    py = int(height * 0.66 - ph / 2 + jitter(height * 0.04))
    dst += np.float32([px, py])
    matrix = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(plate, matrix, (width, height))
    mask = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), matrix, (width, height))
    scene[mask > 0] = warped[mask > 0]
    # Optics and sensor: blur, uneven light, noise.
    k = rng.choice((1, 3, 3, 5))
    scene = cv2.GaussianBlur(scene, (k, k), 0)
    gain = np.linspace(rng.uniform(0.75, 1.0), rng.uniform(0.9, 1.15), width, dtype=np.float32)[None, :, None]
    noise = np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(2, 8), scene.shape).astype(np.float32)
    scene = np.clip(scene.astype(np.float32) * gain + noise, 0, 255).astype(np.uint8)
    xs, ys = dst[:, 0], dst[:, 1]
    cx0, cy0 = max(0, int(xs.min()) - 8), max(0, int(ys.min()) - 6)
    cx1, cy1 = min(width, int(xs.max()) + 8), min(height, int(ys.max()) + 6)
    return scene, scene[cy0:cy1, cx0:cx1].copy()


def _printable(text: str) -> str:
    # OpenCV's Hershey fonts are ASCII only: draw Cyrillic look-alikes and accented
    # letters as their Latin base letter (on the plate they look the same), keep separators.
    return "".join(c if c in " -." else (normalize_plate(c) or "") for c in text.upper())


def encode_jpeg(image: Any, quality: int = 85) -> bytes:
    import cv2

    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


# --------------------------------------------------------------------------- the camera


@dataclass
class Push:
    """What the simulator sent last (tests compare it with what the agent saw)."""

    plate: str
    sent_text: str
    status: int
    reply: str
    scene_jpeg: bytes
    plate_jpeg: bytes
    event_id: str


class AnprCameraSimulator:
    """A camera pushing events to `target_url` in `fmt` (one of FORMATS)."""

    def __init__(self, target_url: str, fmt: str = "hikvision", camera_id: str = "cam1", seed: int | None = None, *,
                 username: str = "", password: str = "", document: str = "xml", multipart: bool = True,
                 timeout_s: float = 30.0, scene_size: tuple[int, int] = (1280, 720)) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format {fmt!r}: one of {', '.join(FORMATS)}")
        self.url = _push_url(target_url, camera_id)
        self.fmt = fmt
        self.camera_id = camera_id
        self.rng = random.Random(seed)
        self.document = document
        self.multipart = multipart
        self.timeout_s = timeout_s
        self.scene_size = scene_size
        self.last: Push | None = None
        handlers: list[Any] = []
        if username:
            passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
            passwords.add_password(None, self.url, username, password)
            handlers += [urllib.request.HTTPDigestAuthHandler(passwords),
                         urllib.request.HTTPBasicAuthHandler(passwords)]
        self._opener = urllib.request.build_opener(*handlers)

    def push(self, plate_text: str, *, role: str = "tractor", ocr_errors: int = 0, lane: str = "",
             country: str = "", confidence: float | None = None) -> int:
        """Render the plate, read it "camera-side" with `ocr_errors` look-alike swaps, POST.

        Returns the HTTP status (0 when the listener could not be reached).
        """
        country = country or _guess_country(plate_text)
        plate_img = render_plate(plate_text, country, self.rng)
        scene, crop = render_scene(plate_img, self.rng, role=role, size=self.scene_size)
        scene_jpeg, plate_jpeg = encode_jpeg(scene), encode_jpeg(crop, 92)
        sent = confuse(plate_text, ocr_errors, self.rng)
        if confidence is None:
            confidence = max(0.3, round(self.rng.uniform(0.88, 0.99) - 0.12 * ocr_errors, 2))
        event_id = new_id()
        now = datetime.now(UTC)
        if self.fmt == "generic":
            body = build_generic(sent, confidence=confidence, country=country, timestamp=now, lane=lane,
                                 camera=self.camera_id, event_id=event_id, jpeg=scene_jpeg)
            content_type = "application/json"
        elif self.fmt == "dahua":
            # ITSAPI times are the camera's wall clock without offset; this camera's clock is UTC.
            body = build_tollgate(sent, confidence_pct=int(confidence * 100), device_id=self.camera_id, at=now,
                                  vehicle_color=self.rng.choice(_VEHICLE_COLORS),
                                  vehicle_type="Trailer" if role == "trailer" else "Truck",
                                  plate_jpeg=plate_jpeg, scene_jpeg=scene_jpeg)
            content_type = "application/json"
        else:
            pictures = {"licensePlatePicture.jpg": plate_jpeg, "detectionPicture.jpg": scene_jpeg}
            if self.document == "json":
                document = json.dumps({"ipAddress": "127.0.0.1", "channelID": 1, "dateTime": now.isoformat(),
                                       "eventType": "ANPR", "eventState": "active", "channelName": self.camera_id,
                                       "UUID": event_id, "ANPR": {"licensePlate": sent, "countryAbbreviation": country,
                                                                  "confidenceLevel": int(confidence * 100),
                                                                  "direction": "forward"}}).encode()
                ctype = "application/json"
            else:
                document = build_alert_xml(sent, confidence_pct=int(confidence * 100), country=country,
                                           channel_name=self.camera_id, at=now, event_id=event_id,
                                           pictures=tuple(pictures))
                ctype = "application/xml"
            if self.multipart:
                body, content_type = build_multipart(document, pictures, boundary=f"boundary{event_id}",
                                                     document_type=ctype)
            else:
                body, content_type = document, ctype
        status, reply = self.post(body, content_type)
        self.last = Push(plate_text, sent, status, reply, scene_jpeg, plate_jpeg, event_id)
        return status

    def keep_alive(self) -> int:
        """The camera's heartbeat (Dahua's ITSAPI keep-alive; others have none): the HTTP status."""
        if self.fmt != "dahua":
            raise ValueError(f"{self.fmt} cameras send no keep-alive")
        return self.post(build_keepalive(self.camera_id), "application/json")[0]

    def post(self, body: bytes, content_type: str) -> tuple[int, str]:
        """POST raw bytes (tests use it for malformed bodies); (status, reply text)."""
        request = urllib.request.Request(self.url, data=body, method="POST", headers={"Content-Type": content_type})
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError):
            return 0, "unreachable"


def _push_url(target_url: str, camera_id: str) -> str:
    parts = urlsplit(target_url)
    if parts.path in ("", "/"):
        return f"{parts.scheme}://{parts.netloc}/anpr/{camera_id}"
    return target_url


def _guess_country(plate: str) -> str:
    countries = format_countries(normalize_plate(plate))
    return countries[0] if countries else "EU"


def render_sample(rng: random.Random, country: str | None = None, *, role: str = "tractor",
                  size: tuple[int, int] = (1280, 720), rows: int = 1) -> tuple[str, Any]:
    """(plate text as printed, scene BGR): one rendered photo for tests and benchmarks."""
    country, text = random_plate(rng, country)
    scene, _ = render_scene(render_plate(text, country, rng, rows=rows), rng, role=role, size=size)
    return text, scene


class PolledCameraSimulator:
    """A Hikvision-like camera the agent polls: alert stream and snapshot over HTTP.

        GET /ISAPI/Event/notification/alertStream   multipart/mixed, endless; `emit()`
                                                    sends one ANPR event (XML + plate JPEG)
        GET /ISAPI/Streaming/channels/101/picture   the current scene as one JPEG
                                                    (`show()` puts a truck in view)

    With `username`, requests must carry Digest credentials (as Hikvision demands).
    """

    STREAM_PATH = "/ISAPI/Event/notification/alertStream"
    SNAPSHOT_PATH = "/ISAPI/Streaming/channels/101/picture"

    def __init__(self, *, seed: int | None = None, username: str = "", password: str = "",
                 host: str = "127.0.0.1", port: int = 0) -> None:
        import queue
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.rng = random.Random(seed)
        self.username, self.password = username, password
        self.auth = Authenticator(realm="camera")
        self.streams: list[queue.Queue] = []
        self.scene_jpeg: bytes = encode_jpeg(render_scene(render_plate("", "EU", self.rng), self.rng)[0])
        self._lock = threading.Lock()
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if sim.username:
                    verdict = sim.auth.check("digest", self.headers.get("Authorization", ""), username=sim.username,
                                             password=sim.password, method="GET", uri=self.path)
                    if verdict:
                        self.send_response(401)
                        self.send_header("WWW-Authenticate", sim.auth.challenge("digest", stale=verdict == "stale"))
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                if self.path == sim.SNAPSHOT_PATH:
                    data = sim.scene_jpeg
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                elif self.path == sim.STREAM_PATH:
                    self._stream()
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def _stream(self) -> None:
                events: queue.Queue = queue.Queue()
                with sim._lock:
                    sim.streams.append(events)
                self.send_response(200)
                self.send_header("Content-Type", "multipart/mixed; boundary=boundary")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                try:
                    while True:
                        chunk = events.get()
                        if chunk is None:
                            return
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except OSError:
                    return
                finally:
                    with sim._lock:
                        sim.streams.remove(events)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.base_url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        daemon=True)

    def start(self) -> PolledCameraSimulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.drop_streams()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    @property
    def stream_url(self) -> str:
        return self.base_url + self.STREAM_PATH

    @property
    def snapshot_url(self) -> str:
        return self.base_url + self.SNAPSHOT_PATH

    def connected_streams(self) -> int:
        with self._lock:
            return len(self.streams)

    def emit(self, plate: str, *, country: str = "", confidence_pct: int = 90, raw: bytes | None = None) -> None:
        """Send one ANPR event to every open alert stream (or `raw` bytes as they are)."""
        if raw is None:
            country = country or _guess_country(plate)
            crop = render_scene(render_plate(plate, country, self.rng), self.rng)[1]
            xml = build_alert_xml(plate, confidence_pct=confidence_pct, country=country, channel_name="stream",
                                  at=datetime.now(UTC), event_id=new_id())
            jpeg = encode_jpeg(crop)
            raw = (b"--boundary\r\nContent-Type: application/xml; charset=\"UTF-8\"\r\n"
                   + f"Content-Length: {len(xml)}\r\n\r\n".encode() + xml + b"\r\n"
                   + b"--boundary\r\nContent-Type: image/jpeg\r\nContent-Disposition: attachment; "
                   + b'filename="licensePlatePicture.jpg"\r\n'
                   + f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
        with self._lock:
            for events in self.streams:
                events.put(raw)

    def drop_streams(self) -> None:
        """Close every open alert stream, as a camera reboot would."""
        with self._lock:
            for events in self.streams:
                events.put(None)

    def show(self, plate: str, *, country: str = "", role: str = "tractor") -> None:
        """Put a truck with `plate` in front of the camera (what snapshots show)."""
        country = country or _guess_country(plate)
        self.scene_jpeg = encode_jpeg(render_scene(render_plate(plate, country, self.rng), self.rng, role=role)[0])


__all__ = [
    "COUNTRIES",
    "FORMATS",
    "WESTERN_BALKANS",
    "AnprCameraSimulator",
    "PolledCameraSimulator",
    "confuse",
    "corrupt",
    "encode_jpeg",
    "random_plate",
    "render_plate",
    "render_sample",
    "render_scene",
]
