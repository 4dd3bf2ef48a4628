"""CCTV cameras of a lane: capture with reconnect, a ring of recent frames, evidence.

`capture.CctvCamera` reads one stream; `recorder.EvidenceRecorder` turns lane events
into snapshots and clips in the evidence store (`edge_agent.evidence`).
"""
