"""A real RTSP camera for the tests: GStreamer's RTSP server with a live test pattern.

Run with the system Python, which has PyGObject (Debian: python3-gi,
gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-base, gstreamer1.0-plugins-good):

    /usr/bin/python3 rtsp_server.py PORT WIDTHxHEIGHT FPS

Serves rtsp://127.0.0.1:PORT/lane as Motion-JPEG over RTP (RFC 2435) and prints the
bound port on its first line once it listens (PORT 0 = any free port).
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    port, size, fps = sys.argv[1], sys.argv[2], sys.argv[3]
    width, height = size.split("x")
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width={width},height={height},"
        f"framerate={fps}/1 "
        "! jpegenc quality=80 ! rtpjpegpay name=pay0 pt=26 )"
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory("/lane", factory)
    server.attach(None)
    print(server.get_bound_port(), flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
