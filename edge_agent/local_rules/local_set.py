"""The site's own indicator set: the local risk analyst's profiles in one file.

`<data_dir>/indicators/local.json` holds every local indicator the site runs with. An
edit adds an indicator or replaces one with the same id at the next version, and stamps
the set with a new version label. Before the file is replaced the new set must load and
merge with every other set the site runs with, so a bad edit never reaches the lanes.
The console (through the core) and `edge-agent indicators add-local` both edit it here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge_agent.local_rules.indicators import FORMAT, IndicatorSet, load_indicator_set, site_indicator_files

LOCAL_FILE = "local.json"


def local_set_path(data_dir: Path) -> Path:
    return Path(data_dir) / "indicators" / LOCAL_FILE


def read_local_set(path: Path) -> dict[str, Any]:
    """The local set document; an empty one when there is no file yet."""
    if not path.exists():
        return {"format": FORMAT, "version": "", "lists": {}, "indicators": []}
    return json.loads(path.read_text(encoding="utf-8"))


def updated_local_set(doc: dict[str, Any], indicator: dict[str, Any], site: str, user: str,
                      at: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the document with `indicator` added or replacing its id at version + 1, the indicator as saved)."""
    raw = {**indicator, "level": "local", "author": indicator.get("author") or user, "owner": site}
    previous = [i for i in doc.get("indicators", []) if i.get("id") == raw.get("id")]
    raw["version"] = max(int(i.get("version", 1)) for i in previous) + 1 if previous else 1
    out = {**doc, "indicators": [i for i in doc.get("indicators", []) if i.get("id") != raw.get("id")] + [raw]}
    out["version"] = f"local-{site}-{at.astimezone(UTC).strftime('%Y%m%dT%H%M%S%fZ')}"
    out["issued_at"] = at.astimezone(UTC).isoformat()
    return out, raw


def checked_local_set(doc: dict[str, Any], path: Path, indicator_files: list[Path], data_dir: Path,
                      channels: list[str]) -> IndicatorSet:
    """The local set loaded and merged with the site's other sets; IndicatorError if it cannot run."""
    local = load_indicator_set(doc, channels=channels)
    others = [p for p in site_indicator_files(indicator_files, data_dir) if p != path]
    return IndicatorSet.merge(*(load_indicator_set(p) for p in others), local)
