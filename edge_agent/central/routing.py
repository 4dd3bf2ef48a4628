"""Which site a SEED pre-arrival record goes to: the BCP named as its office of entry.

Customs office codes (e.g. "XK000101") are not site ids; an office map translates one
into the other. Without an entry, the office code itself is taken as the site id.
"""

from __future__ import annotations

import re

from pydantic import ValidationError

from edge_agent.models import PreArrival
from edge_agent.sync.topics import RESERVED_SITES

_SITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


def route(payload: bytes, offices: dict[str, str]) -> tuple[str, PreArrival] | tuple[None, str]:
    """(site, record) for a valid record, or (None, reason)."""
    try:
        record = PreArrival.model_validate_json(payload)
    except (ValidationError, ValueError) as err:
        return None, f"invalid pre-arrival: {str(err).splitlines()[0]}"
    office = record.office_of_entry
    if not office:
        return None, f"pre-arrival {record.reference} names no office of entry"
    site = offices.get(office, office)
    if not _SITE.match(site) or site in RESERVED_SITES:
        return None, f"office of entry {office!r} maps to no site"
    return site, record
