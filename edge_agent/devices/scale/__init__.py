"""The lane's weighbridge indicator over RS-232/RS-485, USB adapters or serial servers.

frame.py         what a frame decodes to: WeightFrame, BadFrame, Notice; units to kg
lines.py         line framing for the text protocols (garbage-tolerant, bounded)
fixed_frames.py  fixed-length frames with a start byte (Rice Lake, XK3190)
toledo.py        Mettler Toledo continuous output (11, 12, 17, 18 byte frames)
mtsics.py        Mettler Toledo MT-SICS, polled (S, SI, SIR, Z, T)
and_gs.py        A&D indicator stream (ST,GS,+0012.34kg)
sma.py           SMA SCP-0499, polled (<LF>W<CR>)
ricelake.py      Rice Lake RLWS stream
xk3190.py        Yaohua XK3190 family: 12-byte STX frame and the reversed "=" frame
protocols.py     the registry a site names in `scale.protocol`
stability.py     when a reading becomes a weighing (pure; the caller passes the time)
transport.py     ScaleReader: serial_for_url, polling, events (reconnects: devices/reconnect.py)
probe.py         which protocol and serial settings a line speaks
cli.py           `edge-agent scale monitor|zero|tare` (the simulator is edge_agent/simulators/scale.py)

Every parser is sans-I/O: `feed(bytes) -> list[WeightFrame | BadFrame | Notice]`, never raises
on bad bytes, resynchronises on the next frame start and counts what it threw away.
"""
