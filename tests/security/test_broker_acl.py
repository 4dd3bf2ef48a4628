"""The shipped broker ACL as a full matrix on a real mosquitto: every identity kind x every
topic family x read and write, against the expected allow or deny (docs/security.md,
"What each identity may do").

One broker and one connection per identity serve the whole module: with the client id
tied to the certificate, a second connection of the same identity would take the first
one's place. A write's verdict is the broker's (the PUBACK's reason code) and what a
reader of everything (the hub) then received; a read's verdict is whether the legitimate
writer's message reached the identity (`Identity.round_trip` is the positive signal).
"""

from __future__ import annotations

import fnmatch
import itertools

import pytest
from testkit.shipped_broker import OTHER_SITE, RESERVED, SERVICES, SITE, Identity, rewritten_lines

from edge_agent.sync import topics

REGION = "xk-rs"

FAMILIES = {
    "up_own": lambda me: topics.up(me, "hit"),
    "up_other_site": lambda me: topics.up(OTHER_SITE, "hit"),
    "status_own": lambda me: topics.status(me),
    "status_other_site": lambda me: topics.status(OTHER_SITE),
    **{f"down_own_{kind}": (lambda k: lambda me: f"{topics.ROOT}/{me}/down/{k}")(kind) for kind in topics.DOWN_KINDS},
    **{f"down_other_site_{kind}": (lambda k: lambda me: topics.down(OTHER_SITE, k))(kind)
       for kind in topics.DOWN_KINDS},
    "indicators_central": lambda me: topics.INDICATORS_CENTRAL,
    "indicators_region": lambda me: topics.indicators_region(REGION),
    "seed_inbox": lambda me: topics.SEED_INBOX,
    "outside_the_tree": lambda me: "other/v1/x",
}

# identity kind -> (its certificate's CN, what it may read, what it may write); fnmatch patterns
EXPECTED = {
    "site": (SITE, {"down_own_*", "indicators_*"}, {"up_own", "status_own"}),
    "rau-hub": ("rau-hub", {"up_other_site", "status_other_site", "down_*", "indicators_*", "seed_inbox"},
                {"down_*", "indicators_*"}),
    "rau-publisher": ("rau-publisher", {"indicators_*"}, {"indicators_*", "down_other_site_indicators"}),
    "seed-feed": ("seed-feed", set(), {"seed_inbox"}),
    "reserved hub": ("hub", set(), set()),
    "reserved indicators": ("indicators", set(), set()),
}


def allowed(patterns: set[str], family: str) -> bool:
    return any(fnmatch.fnmatchcase(family, p) for p in patterns)


def legitimate_writer(family: str, me: str) -> str | None:
    """Who puts messages on this family's topic, or None when no identity may."""
    if family in ("up_own", "status_own"):
        return me if me == SITE else None  # a service's or a reserved name's own upward topics: nobody
    if family.endswith("other_site"):
        return OTHER_SITE
    if family.startswith("down_"):
        return "rau-hub"
    if family.startswith("indicators_"):
        return "rau-publisher"
    return "seed-feed" if family == "seed_inbox" else None


def test_the_broker_runs_the_shipped_file_with_only_paths_and_port_rewritten(shipped_broker):
    assert sorted(rewritten_lines(shipped_broker.shipped, shipped_broker.rewritten)) == [
        "acl_file", "cafile", "certfile", "keyfile", "listener", "persistence_location"]
    assert "use_username_as_clientid true" in shipped_broker.rewritten


@pytest.fixture(scope="module")
def identities(shipped_broker):
    """One connection per CN, each subscribed to every family's topic as it names them."""
    conns = {cn: Identity(shipped_broker, cn) for cn in (SITE, OTHER_SITE, *SERVICES, *RESERVED)}
    try:
        for cn, conn in conns.items():
            conn.subscribe(sorted({make(cn) for make in FAMILIES.values()}))
        conns["rau-hub"].subscribe(["bcp/v1/#"])  # the observer of every write
        yield conns
    finally:
        for conn in conns.values():
            conn.close()


_counter = itertools.count()


def payload(*parts: str) -> bytes:
    return "|".join([*parts, str(next(_counter))]).encode()


WRITE_CASES = [(kind, family) for kind in EXPECTED for family in FAMILIES]
READ_CASES = [(kind, family) for kind, family in WRITE_CASES if legitimate_writer(family, EXPECTED[kind][0])]


@pytest.mark.parametrize(("kind", "family"), WRITE_CASES, ids=[f"{k}-writes-{f}" for k, f in WRITE_CASES])
def test_write(identities, kind, family):
    cn, _, may_write = EXPECTED[kind]
    topic = FAMILIES[family](cn)
    body = payload("write", cn, topic)
    expected = allowed(may_write, family)
    assert identities[cn].publish(topic, body) is expected, f"{cn} writing {topic}"
    observer = identities["rau-hub"]
    if topic.startswith("bcp/v1/") and not topic.startswith(("bcp/v1/rau-hub/up/", "bcp/v1/rau-hub/status")):
        observer.round_trip()
        assert observer.got(body) is expected, f"the hub {'missed' if expected else 'received'} {cn}'s {topic}"


@pytest.mark.parametrize(("kind", "family"), READ_CASES, ids=[f"{k}-reads-{f}" for k, f in READ_CASES])
def test_read(identities, kind, family):
    cn, may_read, _ = EXPECTED[kind]
    topic = FAMILIES[family](cn)
    writer = legitimate_writer(family, cn)
    body = payload("read", cn, topic)
    assert identities[writer].publish(topic, body), f"{writer}, the legitimate writer, was refused {topic}"
    reader = identities[cn]
    reader.round_trip()
    assert reader.got(body) is allowed(may_read, family), f"{cn} reading {topic}"


@pytest.mark.parametrize("service", [*SERVICES, *RESERVED])
def test_nobody_writes_upward_or_status_in_a_non_site_name(identities, service):
    """A service's (or a reserved name's) upward and status topics stay empty, whoever tries:
    the hub would otherwise store the events as from a site of that name."""
    for writer in (SITE, OTHER_SITE, *SERVICES, *RESERVED):
        for topic in (topics.up(service, "hit"), topics.status(service)):
            assert not identities[writer].publish(topic, payload("up", writer, topic)), f"{writer} wrote {topic}"


def test_a_site_reads_every_region_and_the_central_bundle_as_the_agent_subscribes(identities):
    """Item 3 of issue 14: the shipped ACL gave sites no bundle at all; the agent's own
    subscriptions (topics.site_subscriptions) must all deliver."""
    site = identities[SITE]
    wanted = topics.site_subscriptions(SITE, REGION)
    site.subscribe(wanted)
    bodies = []
    for topic in wanted[1:]:  # the bundles; the downward topics are in the matrix
        body = payload("bundle", topic)
        assert identities["rau-publisher"].publish(topic, body)
        bodies.append(body)
    site.round_trip()
    assert all(site.got(b) for b in bodies)
