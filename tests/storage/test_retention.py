"""Retention with a fake clock: each class goes on time, holds keep everything, the
evidence chain still verifies, and tampering still shows."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import pytest
from testkit.retention_site import T0, Site

from edge_agent.evidence.budget import MediaBudget
from edge_agent.evidence.manifest import EvidenceStore, body_sha256, canonical_json, manifest_paths
from edge_agent.evidence.verify import verify_evidence
from edge_agent.storage.records import RecordsPurger
from edge_agent.storage.retention import CrossingState, EvidenceFile, Periods, plan_purges
from edge_agent.storage.worker import RetentionWorker, has_files

DAY = timedelta(days=1)
PERIODS = Periods(media_days=30, raw_days=45, records_days=90, flagged_days=1825)


@pytest.fixture
def site(tmp_path):
    s = Site(tmp_path)
    yield s
    s.store.close()


def worker(site, budget=None):
    return RetentionWorker(site.evidence, site.store.path, PERIODS, budget, pause_s=0)


def records(site):
    return RecordsPurger(site.store, PERIODS, has_files=lambda cid: has_files(site.evidence.root, cid))


def at(days):
    return T0 + days * DAY


# ---------------------------------------------------------------------------- the planner (pure)

def test_the_planner_keeps_open_and_held_crossings_and_dates_the_rest():
    plain = CrossingState("A", "L1", T0, T0, flagged=False)
    open_ = CrossingState("B", "L1", T0, None, flagged=False)
    flagged = CrossingState("C", "L1", T0, T0, flagged=True)
    released = CrossingState("D", "L1", T0, T0, flagged=True, hold="released", released_at=at(10))
    manual = CrossingState("E", "L1", T0, T0, flagged=False, hold="held")
    files = [EvidenceFile(c, f"crossings/{c}/{k}/f.{s}", k, 10)
             for c in "ABCDE" for k, s in (("snapshot", "jpg"), ("scale", "hex"), ("anpr", "jpg"))]
    states = {s.id: s for s in (plain, open_, flagged, released, manual)}
    assert plan_purges(states, files, PERIODS, at(29.9)) == []
    due = plan_purges(states, files, PERIODS, at(30))
    assert [(p.path, p.data_class) for p in due] == [("crossings/A/snapshot/f.jpg", "media"),
                                                     ("crossings/A/anpr/f.jpg", "media")]
    assert {p.path for p in plan_purges(states, files, PERIODS, at(45))} == {f.path for f in files[:3]}
    # A released hold counts from its release, not from the crossing's end.
    assert {p.crossing_id for p in plan_purges(states, files, PERIODS, at(1825))} == {"A"}
    assert {(p.crossing_id, p.data_class) for p in plan_purges(states, files, PERIODS, at(1835))} == \
        {("A", "media"), ("A", "raw"), ("D", "flagged")}
    assert {p.crossing_id for p in plan_purges(states, files, PERIODS, at(100_000))} == {"A", "D"}


def test_past_the_high_water_mark_the_oldest_unheld_media_go_first():
    states = {f"C{n}": CrossingState(f"C{n}", "L1", at(n), at(n), flagged=(n == 0)) for n in range(5)}
    files = [EvidenceFile(c, f"crossings/{c}/snapshot/a.jpg", "snapshot", 100) for c in states]
    files += [EvidenceFile(c, f"crossings/{c}/scale/a.hex", "scale", 100) for c in states]
    # 500 media bytes; cap 500, high water 450 (90%), target 400: one crossing's picture goes.
    plan = plan_purges(states, files, PERIODS, at(5), media_bytes=500, high_water_bytes=450, cap_bytes=500)
    assert [(p.crossing_id, p.reason) for p in plan] == [("C1", "budget")]  # C0 is held: never early
    assert plan_purges(states, files, PERIODS, at(5), media_bytes=440, high_water_bytes=450, cap_bytes=500) == []


# ---------------------------------------------------------------------------- files and rows, end to end

def test_every_class_goes_on_time_and_the_chain_still_verifies(site):
    plain = site.crossing(T0)
    still_open = site.crossing(None, started=at(5))
    w, r = worker(site), records(site)

    w.run_once(now=at(29))
    assert len(site.files_of(plain)) == 4
    report = w.run_once(now=at(30))
    assert dict(report.purged_files) == {"media/period": 2}
    assert site.files_of(plain) == ["anpr/frames1.hex", "scale/frames0.hex"]
    assert dict(w.run_once(now=at(45)).purged_files) == {"raw/period": 2}
    assert site.files_of(plain) == []
    assert len(site.files_of(still_open)) == 4  # an open crossing is never touched

    events_before = site.events_of_lane()
    assert r.run_pass(at(89)) == 0 and site.kept(plain)
    assert r.run_pass(at(90)) > 0
    assert not site.kept(plain)
    assert site.events_of_lane() == events_before - 2  # its arrival and departure, nothing else
    assert site.kept(still_open) or site.store.crossing_lane(still_open)

    purges: list[str] = []
    assert verify_evidence(site.evidence.root, purges=purges, unsealed_grace_s=1e12) == []
    assert len(purges) == 4 and all("class=" in p and "reason=period" in p for p in purges)


def test_held_crossings_are_kept_whole_until_released_then_after_flagged_days(site):
    hit = site.crossing(T0, hit=True)
    control = site.crossing(T0, control=True)
    rechannel = site.crossing(T0, rechannel=True)
    manual = site.crossing(T0)
    with site.store.transaction():
        site.store.place_hold(manual, "head", "case 2025/17", at(1))
    w, r = worker(site), records(site)
    for day in (30, 45, 90, 3000):
        w.run_once(now=at(day))
        r.run_pass(at(day))
    for cid in (hit, control, rechannel, manual):
        assert len(site.files_of(cid)) == 4 and site.kept(cid), cid
    assert site.store.held_count() == 4

    with site.store.transaction():
        site.store.release_hold(hit, "head", "case closed", at(3000))
        site.store.release_hold(manual, "head", "case closed", at(3000))
    assert site.store.held_count() == 2
    w.run_once(now=at(3000 + 29))
    assert len(site.files_of(manual)) == 4  # a plain crossing released: its periods run from the release
    w.run_once(now=at(3000 + 30))
    assert len(site.files_of(manual)) == 2
    w.run_once(now=at(3000 + 1824))
    r.run_pass(at(3000 + 1824))
    assert len(site.files_of(hit)) == 4 and site.kept(hit)
    w.run_once(now=at(3000 + 1825))
    r.run_pass(at(3000 + 1825))
    assert site.files_of(hit) == [] and not site.kept(hit) and not site.kept(manual)
    assert len(site.files_of(control)) == 4 and site.kept(control)  # still held
    assert verify_evidence(site.evidence.root, unsealed_grace_s=1e12) == []


def test_rows_wait_for_the_files_of_their_crossing(site):
    plain = site.crossing(T0)
    r = records(site)
    r.run_pass(at(365))
    assert site.kept(plain)  # its files are still there (no worker ran): the rows say what they are
    worker(site).run_once(now=at(365))
    r.run_pass(at(365))
    assert not site.kept(plain)


def test_the_rows_go_in_bounded_steps(site):
    crossings = [site.crossing(T0 + n * timedelta(minutes=5), media=0, raw=0) for n in range(30)]
    r = RecordsPurger(site.store, PERIODS, max_rows=10)
    steps = []
    while True:
        with site.store.transaction():
            steps.append(r.step(at(100)))
        if r.next_due is not None:
            break
    assert max(steps) <= 10 and len(steps) > 10
    assert not any(site.kept(c) for c in crossings)
    with site.store.transaction():
        assert r.step(at(100)) == 0  # the next pass is due purge_interval_s later


def test_a_file_deleted_without_a_tombstone_is_still_missing(site):
    plain = site.crossing(T0)
    other = site.crossing(T0)
    worker(site).run_once(now=at(30))
    victim = site.evidence.root / "crossings" / other / "scale" / "frames0.hex"
    victim.unlink()
    problems = verify_evidence(site.evidence.root, unsealed_grace_s=1e12)
    assert problems == [f"missing file: crossings/{other}/scale/frames0.hex (listed in "
                        f"{_manifest_of(site, other)})"]
    assert plain != other


def test_a_forged_tombstone_is_found(site):
    site.crossing(T0)
    victim = site.crossing(T0)
    # A forger deletes a picture and appends a tombstone of their own making at the end of
    # the chain, with a digest that is not the sealed one (they no longer have the file).
    path = f"crossings/{victim}/snapshot/arrival_cam0.jpg"
    (site.evidence.root / path).unlink()
    forged = EvidenceStore(site.evidence.root)
    forged._append(victim, "bcp-evidence-manifest/2", {"files": [], "purged": [
        {"path": path, "sha256": "0" * 64, "size": 1, "class": "media", "reason": "period",
         "purged_at": at(30).isoformat()}]})
    problems = verify_evidence(site.evidence.root, unsealed_grace_s=1e12)
    assert any(p.startswith(f"tombstone differs from the listed file: {path}") for p in problems)
    assert any(p.startswith(f"missing file: {path}") for p in problems)


def test_a_tombstone_slipped_into_the_chain_breaks_it(site):
    first = site.crossing(T0)
    site.crossing(T0)
    worker(site).run_once(now=at(30))
    tombstone = manifest_paths(site.evidence.root)[-1]
    body = json.loads(tombstone.read_text())
    assert body["format"] == "bcp-evidence-manifest/2" and body["files"] == []
    # Rewriting a tombstone to cover a file deleted by hand shows as an edit.
    (site.evidence.root / "crossings" / first / "scale" / "frames0.hex").unlink()
    body["purged"].append({"path": f"crossings/{first}/scale/frames0.hex", "sha256": "x", "size": 1,
                           "class": "raw", "reason": "period", "purged_at": ""})
    body["manifest_sha256"] = body_sha256(body)
    tombstone.write_bytes(canonical_json(body, indent=True))
    problems = verify_evidence(site.evidence.root, unsealed_grace_s=1e12)
    assert any("tombstone differs" in p for p in problems)


def test_a_file_changed_before_its_purge_shows(site):
    victim = site.crossing(T0)
    (site.evidence.root / "crossings" / victim / "snapshot" / "arrival_cam1.jpg").write_bytes(b"swapped")
    worker(site).run_once(now=at(30))
    problems = verify_evidence(site.evidence.root, unsealed_grace_s=1e12)
    assert [p.split(" (")[0] for p in problems] == [
        f"missing file: crossings/{victim}/snapshot/arrival_cam1.jpg",
        f"tombstone differs from the listed file: crossings/{victim}/snapshot/arrival_cam1.jpg"]


def test_a_dry_run_deletes_nothing(site):
    plain = site.crossing(T0)
    report = worker(site).run_once(now=at(100), dry_run=True)
    assert dict(report.purged_files) == {"media/period": 2, "raw/period": 2}
    assert len(site.files_of(plain)) == 4 and len(manifest_paths(site.evidence.root)) == 1


# ---------------------------------------------------------------------------- the disk budget

def test_high_water_purges_the_oldest_unheld_media_first(tmp_path):
    budget = MediaBudget(cap_bytes=1000, high_water_pct=90)
    site = Site(tmp_path, EvidenceStore(tmp_path / "evidence", budget))
    held = site.crossing(at(0), hit=True, media=1, raw=1)
    old = site.crossing(at(1), media=1, raw=1)
    newer = site.crossing(at(2), media=1, raw=1)
    size = len(site.evidence.root.joinpath("crossings", old, "snapshot", "arrival_cam0.jpg").read_bytes())
    assert budget.used_bytes == 3 * size
    budget.cap_bytes = 3 * size + 10  # past the high-water mark now
    budget.recount(budget.used_bytes)
    assert budget.state == "high"
    report = RetentionWorker(site.evidence, site.store.path, PERIODS, budget, pause_s=0).run_once(now=at(3))
    assert [(p.crossing_id, p.reason) for p in report.purges] == [(old, "budget")]
    assert site.files_of(old) == ["scale/frames0.hex"]  # raw payloads are not media
    assert len(site.files_of(held)) == 2 and len(site.files_of(newer)) == 2
    assert budget.used_bytes == 2 * size and budget.state == "ok"
    assert verify_evidence(site.evidence.root, unsealed_grace_s=1e12) == []
    site.store.close()


def test_at_the_cap_no_new_media_is_written_while_records_still_are(tmp_path):
    budget = MediaBudget(cap_bytes=650, high_water_pct=90)
    site = Site(tmp_path, EvidenceStore(tmp_path / "evidence", budget))
    site.crossing(at(0), hit=True, media=2, raw=0)  # 604 bytes of held media: past the mark (585)
    assert budget.state == "high"
    cid = site.crossing(at(1), media=2, raw=1)
    assert budget.state == "critical"
    assert site.files_of(cid) == ["scale/frames0.hex", "snapshot/arrival_cam0.jpg"]
    assert budget.refused == 1  # the second picture was refused
    assert site.store.crossing_lane(cid) == "L1"  # the crossing's records are stored all the same
    # The worker takes the one picture not on hold; the held ones stay, and media are taken again.
    report = RetentionWorker(site.evidence, site.store.path, PERIODS, budget, pause_s=0).run_once(now=at(2))
    assert [(p.crossing_id, p.reason) for p in report.purges] == [(cid, "budget")]
    assert budget.state == "high" and budget.admit()
    site.store.close()


def _manifest_of(site, cid):
    return next(p for p in manifest_paths(site.evidence.root) if p.name.endswith(f"_{cid}.json")) \
        .relative_to(site.evidence.root).as_posix()


def test_records_may_not_go_before_the_files_they_describe():
    from edge_agent.config import parse_config
    from edge_agent.errors import ConfigError

    site = '[site]\nid = "B"\nregion = "R"\n[[lanes]]\nid = "L1"\n[retention]\nmedia_days = 120\n'
    with pytest.raises(ConfigError) as refused:
        parse_config(site)
    assert any("line 6: retention" in p and "records_days must be at least media_days" in p
               for p in refused.value.problems), refused.value.problems
    assert parse_config(site + "records_days = 120\n").retention.records_days == 120


def test_prearrivals_and_rejected_inputs_go_once_no_kept_crossing_points_to_them(site):
    from edge_agent.models import Party, PreArrival, PreArrivalReceived, Rejected

    def record(reference, expires_at=None):
        return PreArrival(reference=reference, tractor_plate="KS123AB", gross_kg=24000.0, expires_at=expires_at,
                          consignor=Party(name="Tabak Export DOO", country="RS"),
                          consignee=Party(name="Dukat SH.P.K.", country="XK"))

    plain, held = site.crossing(T0, media=0, raw=0), site.crossing(T0, media=0, raw=0, hit=True)
    with site.store.transaction():
        for ref, crossing, expires in (("R-PLAIN", plain, None), ("R-HELD", held, None),
                                       ("R-EXPIRED", "", T0 + DAY), ("R-LATER", "", at(200))):
            site.store.upsert_prearrival(record(ref, expires))
            site.store.record_event(PreArrivalReceived(record=record(ref, expires), at=T0, source="seed"))
            if crossing:
                site.store.mark_prearrival(ref, "arrived", crossing)
            elif expires and expires < at(100):
                site.store.mark_prearrival(ref, "expired")
        site.store.record_rejection(Rejected(source="anpr", reason="garbled", raw="KS12?AB", at=T0))
    records(site).run_pass(at(100))
    left = {ref for ref in ("R-PLAIN", "R-HELD", "R-EXPIRED", "R-LATER") if site.store.prearrival(ref)}
    assert left == {"R-HELD", "R-LATER"}  # a held crossing keeps its record; one still valid stays
    with sqlite3.connect(site.store.path) as conn:
        refs = {r[0] for r in conn.execute(
            "SELECT json_extract(body, '$.record.reference') FROM events WHERE kind = 'prearrival'")}
        assert refs == {"R-HELD", "R-LATER"}
        assert conn.execute("SELECT count(*) FROM rejections").fetchone()[0] == 0
