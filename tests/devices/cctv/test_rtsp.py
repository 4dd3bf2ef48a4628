"""CctvCamera over real RTSP (GStreamer's RTSP server, Motion-JPEG over RTP, TCP interleaved)."""

from __future__ import annotations

import cv2
import numpy as np


def test_reads_an_rtsp_stream(rtsp, cameras, wait_until):
    cam = cameras(rtsp.url, stream_timeout_s=10.0)
    cam.start()
    wait_until(lambda: cam.frames >= 10 and len(cam.ring) >= 2)
    health = cam.health()
    assert health["connected"] is True and health["url"] == rtsp.url
    image = cv2.imdecode(np.frombuffer(cam.snapshot_jpeg(), np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (240, 320, 3)
    assert (cam.ring.latest().width, cam.ring.latest().height) == (160, 120)


def test_rtsp_camera_that_restarts_is_reconnected(rtsp, cameras, wait_until):
    cam = cameras(rtsp.url, stream_timeout_s=2.0, reconnect_max_s=0.5)
    cam.start()
    wait_until(lambda: cam.frames >= 5)
    rtsp.stop()
    wait_until(lambda: cam.losses == 1)
    rtsp.start()
    wait_until(lambda: cam.reconnects == 1, timeout_s=60)
    before = cam.frames
    wait_until(lambda: cam.frames >= before + 5)
    assert cam.health()["connected"] is True
