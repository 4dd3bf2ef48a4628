"""Plate cameras: push formats (Hikvision ISAPI, generic JSON), polled cameras, the
per-lane HTTP listener, local recognition, plate normalisation and association."""
