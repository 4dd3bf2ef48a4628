"""CctvCamera over a real MJPEG HTTP stream and real video files, through OpenCV."""

from __future__ import annotations

import logging
import threading

import cv2
import numpy as np
import pytest

from edge_agent.devices.cctv.capture import redact, with_credentials

LOGGER = "edge_agent.devices.cctv.capture"


def decode(jpeg: bytes):
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def messages(caplog, event: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.getMessage().startswith(event)]


def test_reads_http_mjpeg_into_a_downscaled_ring(sim, cameras, wait_until):
    cam = cameras(sim.url, ring_fps=5, ring_seconds=4)
    cam.start()
    wait_until(lambda: cam.frames >= 25 and len(cam.ring) >= 5)
    health = cam.health()
    assert health["connected"] is True
    assert health["reconnects"] == 0 and health["losses"] == 0
    assert health["last_frame_age_s"] is not None and health["last_frame_age_s"] < 3
    assert wait_until(lambda: cam.health()["fps"] > 0)
    frame = cam.ring.latest()
    assert (frame.width, frame.height) == (160, 120)
    assert decode(frame.jpeg).shape == (120, 160, 3)
    # Ring rate is reduced: fewer ring frames than stream frames, about half at 10 -> 5 per second.
    assert len(cam.ring) < cam.frames
    assert health["ring_bytes"] == sum(len(f.jpeg) for f in cam.ring.window(-1, float("inf")))


def test_ring_holds_only_the_last_seconds(sim, cameras, wait_until):
    cam = cameras(sim.url, ring_fps=10, ring_seconds=1)
    cam.start()
    wait_until(lambda: cam.frames >= 40)
    frames = cam.ring.window(-1, float("inf"))
    assert frames[-1].at_mono - frames[0].at_mono <= 1.0
    assert len(frames) <= 11


def test_snapshot_is_the_full_size_latest_frame(sim, cameras, wait_until):
    cam = cameras(sim.url)
    assert cam.snapshot_jpeg() is None  # nothing read yet
    cam.start()
    jpeg = wait_until(cam.snapshot_jpeg)
    assert decode(jpeg).shape == (240, 320, 3)


def test_reads_a_file_written_by_videowriter_and_replays_it(video_file, cameras, wait_until):
    cam = cameras(str(video_file))
    cam.start()
    # 20 frames in the file: more than 20 read means it looped.
    wait_until(lambda: cam.frames > 25, timeout_s=40)
    assert cam.replays >= 1
    assert cam.health()["losses"] == 0  # the end of a file is not a lost stream
    assert decode(cam.snapshot_jpeg()).shape == (240, 320, 3)
    assert len(cam.ring) > 0


def test_file_url_form(video_file, cameras, wait_until):
    cam = cameras(f"file://{video_file}")
    cam.start()
    wait_until(lambda: cam.frames >= 5)


def test_reconnects_after_the_server_drops_the_stream(sim, cameras, wait_until, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    cam = cameras(sim.url)
    cam.start()
    wait_until(lambda: cam.frames >= 10)
    sim.drop(refuse_s=1.5)
    wait_until(lambda: cam.losses == 1)
    assert cam.health()["connected"] is False
    wait_until(lambda: cam.reconnects == 1)
    before = cam.frames
    wait_until(lambda: cam.frames >= before + 10)
    health = cam.health()
    assert health["connected"] is True and health["losses"] == 1
    # While refused, it retried more than once but said so once, and once on recovery.
    assert health["open_failures"] >= 1
    assert len(messages(caplog, "cctv_stream_lost")) == 1
    assert len(messages(caplog, "cctv_stream_recovered")) == 1
    assert sim.connections >= 2


def test_a_refusing_camera_is_logged_once_on_loss_and_once_on_return(sim, cameras, wait_until, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    cam = cameras(sim.url, reconnect_max_s=0.2)
    cam.start()
    wait_until(lambda: cam.frames >= 5)
    sim.drop(refuse_s=600)  # the camera reboots and answers nothing ...
    wait_until(lambda: cam.open_failures >= 3)  # ... through several retries
    assert cam.health()["connected"] is False and cam.reconnects == 0
    sim.drop(refuse_s=0)  # ... until it is back
    wait_until(lambda: cam.reconnects == 1)
    health = cam.health()
    assert health["connected"] is True and health["losses"] == 1 and health["link_errors"] >= 4
    assert len(messages(caplog, "cctv_stream_connected")) == 1
    assert len(messages(caplog, "cctv_stream_lost")) == 1
    recovered = messages(caplog, "cctv_stream_recovered")
    assert len(recovered) == 1 and f"camera={cam.camera_id} lane=L1" in recovered[0]


def test_an_unreachable_camera_is_logged_once_and_retried(closed_port_url, cameras, wait_until, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    cam = cameras(closed_port_url, reconnect_max_s=0.2)
    cam.start()
    wait_until(lambda: cam.open_failures >= 3)
    health = cam.health()
    assert health["connected"] is False and health["last_frame_age_s"] is None and health["frames"] == 0
    assert cam.snapshot_jpeg() is None
    assert len(messages(caplog, "cctv_stream_lost")) == 1
    assert messages(caplog, "cctv_stream_recovered") == []


def test_clip_has_frames_before_and_after_and_calls_back_in_the_camera_thread(sim, cameras, wait_until):
    cam = cameras(sim.url, ring_fps=5, ring_seconds=10)
    cam.start()
    wait_until(lambda: len(cam.ring) >= 8)  # more than a second and a half in the ring
    called: list[tuple[str, int]] = []

    def on_done(frames):
        called.append((threading.current_thread().name, len(frames)))

    request = cam.clip(1.0, 2.0, on_done=on_done)
    frames = request.wait(timeout_s=30)
    assert frames is not None
    assert any(f.at_mono <= request.requested_mono for f in frames)
    assert any(f.at_mono > request.requested_mono for f in frames)
    assert all(request.start_mono < f.at_mono <= request.end_mono for f in frames)
    times = [f.at_mono for f in frames]
    assert times == sorted(times) and len(set(times)) == len(times)
    wait_until(lambda: called)
    assert called == [(f"cctv-L1-{cam.camera_id}", len(frames))]


def test_a_clip_shorter_than_a_ring_period_still_holds_the_frame_of_the_moment(sim, cameras, wait_until):
    # At 2 ring frames a second, a 0.01 s window would almost always fall between two frames.
    cam = cameras(sim.url, ring_fps=2, ring_seconds=10)
    cam.start()
    wait_until(lambda: len(cam.ring) >= 3)
    for _ in range(5):
        request = cam.clip(0.01, 0.01)
        frames = request.wait(timeout_s=30)
        assert frames, "a live camera's clip came out empty"
        assert any(f.at_mono <= request.requested_mono for f in frames)


def test_clip_completes_when_the_stream_is_lost(sim, cameras, wait_until):
    cam = cameras(sim.url, ring_fps=5)
    cam.start()
    wait_until(lambda: len(cam.ring) >= 3)
    sim.drop(refuse_s=60)
    wait_until(lambda: cam.losses == 1)
    request = cam.clip(2.0, 0.5)
    frames = request.wait(timeout_s=30)
    assert frames is not None and all(f.at_mono <= request.requested_mono for f in frames)


def test_stop_completes_pending_clips(sim, cameras, wait_until):
    cam = cameras(sim.url)
    cam.start()
    wait_until(lambda: len(cam.ring) >= 2)
    request = cam.clip(1.0, 60.0)
    cam.stop()
    assert request.done.is_set()
    assert not cam.running


def test_a_failing_clip_callback_does_not_kill_the_camera(sim, cameras, wait_until):
    cam = cameras(sim.url)
    cam.start()
    wait_until(lambda: len(cam.ring) >= 2)

    def boom(frames):
        raise RuntimeError("callback bug")

    cam.clip(0.5, 0.2, on_done=boom).wait(30)
    wait_until(lambda: cam.clip_callback_failures == 1)
    before = cam.frames
    wait_until(lambda: cam.frames > before + 5)
    assert cam.running


def test_snapshot_goes_stale_when_the_camera_stops_sending(sim, cameras, wait_until):
    cam = cameras(sim.url)
    cam.start()
    wait_until(cam.snapshot_jpeg)
    sim.drop(refuse_s=60)
    wait_until(lambda: cam.snapshot_jpeg() is None, timeout_s=30)


def test_camera_without_url_is_a_config_error():
    from edge_agent.config import CameraConfig
    from edge_agent.devices.cctv.capture import CctvCamera

    with pytest.raises(ValueError):
        CctvCamera(CameraConfig(id="c", kind="cctv"), "L1")


def test_credentials_and_redaction():
    url = with_credentials("rtsp://10.0.0.5:554/Streaming/Channels/101", "admin", "p@ss:w/rd")
    assert url == "rtsp://admin:p%40ss%3Aw%2Frd@10.0.0.5:554/Streaming/Channels/101"
    assert redact(url) == "rtsp://admin:***@10.0.0.5:554/Streaming/Channels/101"
    assert with_credentials("rtsp://u:x@h/s", "admin", "y") == "rtsp://u:x@h/s"  # the URL's own login wins
    assert with_credentials("/var/video/lane.avi", "admin", "y") == "/var/video/lane.avi"
    assert redact("http://cam.local/mjpg") == "http://cam.local/mjpg"


def test_build_cameras_takes_only_cctv_cameras_per_lane():
    from edge_agent.config import CameraConfig, LaneConfig
    from edge_agent.devices.cctv.capture import build_cameras

    lanes = [
        LaneConfig(id="L1", cameras=[
            CameraConfig(id="plate", kind="anpr"),
            CameraConfig(id="scene", kind="cctv", role="scene", url="rtsp://10.0.0.9/stream1"),
        ]),
        LaneConfig(id="L2"),
    ]
    built = build_cameras(lanes)
    assert list(built) == ["L1", "L2"]
    assert [(c.camera_id, c.lane_id, c.running) for c in built["L1"]] == [("scene", "L1", False)]
    assert built["L2"] == []
