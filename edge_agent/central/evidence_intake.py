"""The hub's side of evidence on demand (docs/evidence.md, docs/sync.md): a site's answer to
an `evidence_request` (its chain proof and file list, stream `evidence_manifest`) and the
files' chunks (stream `evidence_chunk`), stored in the ledger and checked.

The proof must hold and reach a head the site anchored here as it sealed
(`edge_agent.evidence.proof.check_chain`); only the files its manifests list are taken;
once a file's chunks are all in, its SHA-256 and size must be the manifest's. Anything
else is refused: logged, counted, kept in the ledger's rejections, and never shown as
verified (a refused file's chunks are dropped). Every message is answered on
`bcp/v1/{site}/down/evidence_ack` with what the hub holds, so the site sends only the rest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from collections import Counter
from typing import Any

from edge_agent.central.ledger import Ledger
from edge_agent.evidence.manifest import body_sha256
from edge_agent.evidence.proof import check_chain, listed_files

log = logging.getLogger(__name__)

STREAMS = frozenset({"evidence_manifest", "evidence_chunk", "cctv_snapshot"})
MAX_CHUNK_BYTES = 1024 * 1024
MAX_SNAPSHOT_BYTES = 8 * 1024 * 1024


def chunk_count(size: int, chunk_bytes: int) -> int:
    return -(-size // chunk_bytes) if size > 0 else 0


class EvidenceIntake:
    def __init__(self, counters: Counter[str]) -> None:
        self.counters = counters

    def take(self, ledger: Ledger, batch: list[tuple[str, str, bytes]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Store a batch of evidence messages; the acknowledgement to publish per (site, request)."""
        acks: dict[tuple[str, str], dict[str, Any]] = {}
        for site, stream, payload in batch:
            try:
                body = json.loads(payload)
                if not isinstance(body, dict) or not isinstance(body.get("request"), str):
                    raise ValueError("not an object with a request id")
            except (ValueError, UnicodeDecodeError) as err:
                self._refuse(ledger, site, f"unreadable {stream}: {err}", payload)
                continue
            ack = acks.setdefault((site, body["request"]), {"request": body["request"], "have": {}, "refused": []})
            try:
                if stream == "evidence_manifest":
                    self._manifest(ledger, site, body, ack)
                elif stream == "cctv_snapshot":
                    self._snapshot(ledger, site, body, ack)
                else:
                    self._chunk(ledger, site, body, ack)
            except (ValueError, TypeError, KeyError, AttributeError) as err:
                # A well-formed JSON object with fields of the wrong shape: refused, and answered,
                # so the site does not send it for ever.
                ack["manifest"] = "refused"
                self._refuse(ledger, site, f"malformed {stream}: {err!r}"[:500], "")
        return acks

    def _manifest(self, ledger: Ledger, site: str, body: dict[str, Any], ack: dict[str, Any]) -> None:
        request, crossing_id = body["request"], str(body.get("crossing_id", ""))
        if not any(r["id"] == request for r in ledger.evidence_requests(site, crossing_id)):
            ack["manifest"] = "refused"  # evidence nobody at the RAU asked for is not taken in
            self._refuse(ledger, site, f"evidence of {crossing_id} for request {request[:40]!r} that was never made",
                         "")
            return
        if body.get("error"):
            ledger.set_evidence_request(request, "unknown", str(body["error"])[:500])
            ack["manifest"] = "refused"
            log.info("hub_evidence_unknown site=%s crossing=%s reason=%s", site, crossing_id, body["error"])
            return
        chain = body.get("chain") if isinstance(body.get("chain"), list) else []
        chain = [link for link in chain if isinstance(link, dict)]
        digests = [body_sha256(link["body"]) for link in chain if isinstance(link.get("body"), dict)]
        anchored = ledger.evidence_anchored(site, digests)
        problems, head = check_chain(chain, crossing_id, anchored)
        chunk_bytes = body.get("chunk_bytes")
        if not isinstance(chunk_bytes, int) or not 0 < chunk_bytes <= MAX_CHUNK_BYTES:
            problems.append(f"bad chunk size {chunk_bytes!r}")
        if problems or head is None:
            reason = "; ".join(problems)[:2000]
            ledger.set_evidence_request(request, "refused", reason)
            ack["manifest"] = "refused"
            self._refuse(ledger, site, f"evidence proof of {crossing_id} refused: {reason}", json.dumps(body)[:2000])
            return
        said = {str(f.get("sha256")): f for f in body.get("files") or [] if isinstance(f, dict)}
        for digest, entry in listed_files(chain, crossing_id).items():
            count = chunk_count(entry["size"], chunk_bytes)
            if entry["purged"]:
                ledger.put_evidence_file(site, crossing_id, entry, count, "purged", f"tombstone {entry['purged']}")
            elif said.get(digest, {}).get("state") == "missing":
                ledger.put_evidence_file(site, crossing_id, entry, count, "missing",
                                         "gone from the site without a tombstone")
            else:
                ledger.put_evidence_file(site, crossing_id, entry, count, "requested")
                if count == 0:
                    self._finish(ledger, site, digest, ack)
            ack["have"][digest] = ledger.evidence_chunk_indexes(site, digest)
        # The proof kept (and exported) ends at the newest anchor: what comes after it proves nothing.
        upto = next(n for n, link in enumerate(chain) if body_sha256(link["body"]) == head)
        kept = chain[:upto + 1]
        anchors = {d: anchored[d] for d in (body_sha256(link["body"]) for link in kept) if d in anchored}
        proof = json.dumps({"chain": kept, "head": {"sha256": head, "sequence": anchored[head]}, "anchors": anchors},
                           separators=(",", ":"))
        ledger.set_evidence_request(request, "received", f"{len(kept)} manifest(s), {len(anchors)} anchored here",
                                    proof)
        ack["manifest"] = "accepted"
        self.counters["evidence_proofs"] += 1
        log.info("hub_evidence_proof site=%s crossing=%s manifests=%d head=%s", site, crossing_id, len(kept),
                 head[:16])

    def _snapshot(self, ledger: Ledger, site: str, body: dict[str, Any], ack: dict[str, Any]) -> None:
        """A lane's latest CCTV frame, asked from the console: a JPEG, or why there is none."""
        request, lane = body["request"], str(body.get("lane", ""))
        ack["manifest"] = "accepted"  # answered either way: the site sends it once
        asked = {s["id"]: s["state"] for s in ledger.cctv_snapshots(site, 500)}
        if request not in asked:
            self._refuse(ledger, site, f"cctv snapshot for request {request[:40]!r} that was never made", "")
            return
        if asked[request] != "requested":
            return  # a resend after a lost acknowledgement: the first answer stays
        if body.get("error"):
            ledger.put_cctv_snapshot(request, site, "unavailable", detail=str(body["error"])[:500])
            return
        try:
            data = base64.b64decode(str(body.get("data", "")), validate=True)
        except (binascii.Error, ValueError):
            data = b""
        if not data.startswith(b"\xff\xd8") or len(data) > MAX_SNAPSHOT_BYTES:
            ledger.put_cctv_snapshot(request, site, "refused", detail="not a JPEG, or oversize")
            self._refuse(ledger, site, f"cctv snapshot of lane {lane[:40]}: not a JPEG, or oversize", "")
            return
        ledger.put_cctv_snapshot(request, site, "received", str(body.get("camera", ""))[:64],
                                 str(body.get("taken_at", ""))[:40], data)
        self.counters["cctv_snapshots"] += 1
        log.info("hub_cctv_snapshot site=%s lane=%s bytes=%d", site, lane, len(data))

    def _chunk(self, ledger: Ledger, site: str, body: dict[str, Any], ack: dict[str, Any]) -> None:
        digest, index = str(body.get("sha256", "")), body.get("index")
        rows = ledger.evidence_files(site, sha256=digest)
        if not rows or not isinstance(index, int) or not 0 <= index < rows[0]["chunks"]:
            ack["refused"].append(digest)
            self._refuse(ledger, site, f"evidence chunk {digest[:16]}#{index}: no listed file of a request has it",
                         json.dumps({k: v for k, v in body.items() if k != "data"}))
            return
        if all(r["state"] == "verified" for r in rows):
            ack["have"].setdefault(digest, []).append(index)  # a resend: it is here already
            return
        if all(r["state"] in ("purged", "missing", "refused") for r in rows):
            ack["refused"].append(digest)
            self._refuse(ledger, site, f"evidence chunk {digest[:16]}#{index}: its file is {rows[0]['state']}", "")
            return
        try:
            data = base64.b64decode(str(body.get("data", "")), validate=True)
        except (binascii.Error, ValueError) as err:
            self._refuse(ledger, site, f"evidence chunk {digest[:16]}#{index}: bad data ({err})", "")
            return
        if len(data) > MAX_CHUNK_BYTES:
            self._refuse(ledger, site, f"evidence chunk {digest[:16]}#{index}: oversize", "")
            return
        if ledger.store_evidence_chunk(site, digest, index, data):
            self.counters["evidence_chunks"] += 1
        ack["have"].setdefault(digest, []).append(index)
        if len(ledger.evidence_chunk_indexes(site, digest)) >= rows[0]["chunks"]:
            self._finish(ledger, site, digest, ack)
        else:
            ledger.set_evidence_file_state(site, digest, "uploading")

    def _finish(self, ledger: Ledger, site: str, digest: str, ack: dict[str, Any]) -> None:
        """All chunks are in: the file is what its manifest says, or it is refused."""
        content = ledger.evidence_content(site, digest)
        size = ledger.evidence_files(site, sha256=digest)[0]["size"]
        actual = hashlib.sha256(content).hexdigest()
        if actual == digest and len(content) == size:
            ledger.set_evidence_file_state(site, digest, "verified", "SHA-256 matches the manifest")
            self.counters["evidence_verified"] += 1
            log.info("hub_evidence_verified site=%s sha256=%s bytes=%d", site, digest[:16], size)
            return
        ledger.drop_evidence_chunks(site, digest)
        ledger.set_evidence_file_state(site, digest, "refused",
                                       f"the upload's SHA-256 is {actual} ({len(content)} bytes), not the manifest's")
        ack["refused"].append(digest)
        ack["have"].pop(digest, None)
        self._refuse(ledger, site, f"evidence file {digest[:16]} refused: the upload differs from its manifest "
                     f"(sha256 {actual[:16]}, {len(content)} bytes)", "")

    def _refuse(self, ledger: Ledger, site: str, reason: str, raw: str | bytes) -> None:
        self.counters["evidence_refused"] += 1
        log.warning("hub_evidence_refused site=%s reason=%s", site, reason)
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        ledger.reject(f"{site}/evidence", reason, text[:2000])
