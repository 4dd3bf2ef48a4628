"""Evidence of what the lane saw: files written once, sealed per crossing into a
hash-chained manifest (`manifest.EvidenceStore`), checked by `verify.verify_evidence`.

A site keeps its evidence under `<site.data_dir>/evidence` (`evidence_root`).
"""

from __future__ import annotations

from pathlib import Path


def evidence_root(data_dir: Path) -> Path:
    return Path(data_dir) / "evidence"
