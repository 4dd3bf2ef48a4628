"""The regional SEED exchange, simulated: publishes pre-arrival records for the hub to route.

The real exchange hands records to the RAU; the hub (`edge-agent central serve`) routes
each to the BCP named as its office of entry. This simulator speaks to the hub the same
way, on the hub's inbox topic (bcp/v1/hub/seed/prearrival), so routing is exercised end
to end. Records are made up but shaped like SEED's (the data elements in
docs/sync.md): plates, parties, HS codes, weights, offices.

    python -m edge_agent.simulators.seed_feed --port 1883 --office bcp-a --office bcp-b --count 20
    python -m edge_agent.simulators.seed_feed --port 1883 --file record.json
"""

from __future__ import annotations

import json
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from edge_agent.central.broker import BrokerError, Endpoint, publish_once
from edge_agent.models import Item, Party, PreArrival
from edge_agent.sync import topics

_LETTERS = "ABCDEFGHJKLMNPRSTVXYZ"
_PARTIES = [
    ("Drini Trade SH.P.K.", "XK"),
    ("Vardar Export DOOEL", "MK"),
    ("Adriatik Foods SH.A.", "AL"),
    ("Morava Logistika DOO", "RS"),
    ("Balkan Timber d.o.o.", "ME"),
]
_GOODS = [
    ("0808100000", "Fresh apples"),
    ("7214200000", "Steel bars"),
    ("4407110000", "Sawn pine wood"),
    ("8703231900", "Used passenger cars"),
    ("2202100000", "Mineral water"),
]


def make_record(rng: random.Random, office: str, now: datetime, number: int) -> PreArrival:
    """One plausible SEED pre-arrival record for `office`."""
    plate = (
        f"{rng.choice(['SK', 'TR', 'BG', 'NI'])}{rng.randint(100, 9999)}{rng.choice(_LETTERS)}{rng.choice(_LETTERS)}"
    )
    trailer = (
        f"{plate[:2]}{rng.randint(100, 999)}{rng.choice(_LETTERS)}{rng.choice(_LETTERS)}" if rng.random() < 0.8 else ""
    )
    hs, desc = rng.choice(_GOODS)
    gross = round(rng.uniform(8000, 38000), -1)
    sender, receiver = rng.sample(_PARTIES, 2)
    return PreArrival(
        reference=f"SEED-{now:%Y%m%d}-{number:06d}",
        tractor_plate=plate,
        trailer_plate=trailer,
        gross_kg=gross,
        consignor=Party(name=sender[0], country=sender[1]),
        consignee=Party(name=receiver[0], country=receiver[1]),
        items=[Item(hs_code=hs, origin=sender[1], description=desc, packages=rng.randint(1, 40), gross_kg=gross)],
        country_of_dispatch=sender[1],
        office_of_exit=f"{sender[1]}-EXIT",
        office_of_entry=office,
        packages=rng.randint(1, 40),
        value_eur=round(rng.uniform(5000, 90000), 2),
        sent_at=now,
        expires_at=now + timedelta(hours=48),
    )


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=1883, show_default=True, type=int)
@click.option("--tls-ca", type=click.Path(exists=True, path_type=Path))
@click.option("--tls-cert", type=click.Path(exists=True, path_type=Path), help="The feed's certificate (CN seed-feed).")
@click.option("--tls-key", type=click.Path(exists=True, path_type=Path))
@click.option("--office", "offices", multiple=True, help="Office of entry to send records to (repeat).")
@click.option("--count", default=10, show_default=True)
@click.option("--seed", default=1, show_default=True, help="Random seed: the same seed sends the same records.")
@click.option(
    "--file",
    "files",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Send these records as they are.",
)
def main(host, port, tls_ca, tls_cert, tls_key, offices, count, seed, files) -> None:
    """Publish SEED pre-arrival records to the central hub's routing inbox."""
    messages = [(topics.SEED_INBOX, Path(f).read_bytes(), False) for f in files]
    if offices:
        rng = random.Random(seed)
        now = datetime.now(UTC)
        for number in range(count):
            record = make_record(rng, offices[number % len(offices)], now, number)
            messages.append((topics.SEED_INBOX, record.model_dump_json().encode(), False))
    if not messages:
        raise click.UsageError("nothing to send: give --office or --file")
    endpoint = Endpoint(host=host, port=port, tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key)
    try:
        publish_once(endpoint, f"seed-feed-{seed}", messages)
    except BrokerError as err:
        raise click.ClickException(str(err)) from err
    click.echo(json.dumps({"sent": len(messages), "topic": topics.SEED_INBOX}))


if __name__ == "__main__":
    sys.exit(main())
