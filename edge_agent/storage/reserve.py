"""Space set aside at start, given back when the disk fills.

The data directory shares its file system with the evidence, the logs and whatever
else a technician left there. When that fills, the core's next commit fails. A file of
`reserve_mb` allocated at start (blocks really reserved with posix_fallocate, nothing
written, so no wear) is deleted at that moment: the core can commit what it started and
raise its alarm instead of failing half-way. It is allocated again once the storage has
recovered and there is room for it and a margin.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

RESERVE_NAME = "reserve"
MARGIN = 2  # allocate again only with this many times its size free


class Reserve:
    def __init__(self, data_dir: Path, size_mb: float) -> None:
        self.path = Path(data_dir) / RESERVE_NAME
        self.size = int(size_mb * 2**20)
        self.given_back = 0

    @property
    def held(self) -> int:
        """Bytes the reserve holds now."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def allocate(self) -> bool:
        """Set the space aside (again); False, with a warning, when the disk has no room."""
        if self.size <= 0 or self.held >= self.size:
            return self.size <= 0 or self.held >= self.size
        free = shutil.disk_usage(self.path.parent).free
        if free < self.size * MARGIN:
            log.warning("storage_reserve_not_allocated size_mb=%.0f free_mb=%.0f", self.size / 2**20, free / 2**20)
            return False
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.posix_fallocate(fd, 0, self.size)
        except OSError as err:
            os.close(fd)
            self.path.unlink(missing_ok=True)
            log.warning("storage_reserve_not_allocated size_mb=%.0f error=%s", self.size / 2**20, err)
            return False
        os.close(fd)
        return True

    def give_back(self) -> bool:
        """Delete the reserve; True when there was space to give."""
        held = self.held
        self.path.unlink(missing_ok=True)
        if held:
            self.given_back += 1
            log.error("storage_reserve_given_back mb=%.0f: the disk is full", held / 2**20)
        return held > 0
