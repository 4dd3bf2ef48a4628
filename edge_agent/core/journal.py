"""Events the storage could not take, kept in order until it can.

When a commit fails because the disk is full or the card gives I/O errors, the core
keeps the event here and every later one behind it (their order is the lanes' story),
and retries from the oldest. Events are held as their JSON, about half a kilobyte
each, so the default bound of 50,000 (two days of a busy two-lane crossing) costs some
25 MB at worst. Past the bound an event is refused, counted and logged: the one case
where the agent cannot keep its promise, and it says so.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from pydantic import BaseModel


class Journal:
    def __init__(self, max_events: int = 50_000) -> None:
        self.max_events = max_events
        self._items: deque[tuple[type[BaseModel], bytes] | Any] = deque()
        self.refused = 0

    def __len__(self) -> int:
        return len(self._items)

    def append(self, item: Any) -> bool:
        """Keep `item` behind the others; False (and counted) when the journal is full."""
        if len(self._items) >= self.max_events:
            self.refused += 1
            return False
        self._items.append((type(item), item.model_dump_json().encode()) if isinstance(item, BaseModel) else item)
        return True

    def oldest(self) -> Any:
        kept = self._items[0]
        if isinstance(kept, tuple) and len(kept) == 2 and isinstance(kept[0], type) \
                and issubclass(kept[0], BaseModel) and isinstance(kept[1], bytes):
            return kept[0].model_validate_json(kept[1])
        return kept

    def drop_oldest(self) -> None:
        self._items.popleft()
