"""The RAU console's indicator authoring (issue 16 item 5): drafts, preview, submission
and a second person's approval, which signs the set and releases it through the hub.

    /indicators                   the drafts and approved versions (who drafted, who approved)
    /indicators/new               POST: a draft for a slot, from its last approved version
    /indicators/{id}              the JSON editor, the one-indicator form, the preview
    /indicators/{id}/json         POST: save the whole set (checked by the engine's validation)
    /indicators/{id}/indicator    POST: add or replace one indicator from the form
    /indicators/{id}/submit       POST: submit (signed with the drafter's key when they hold one)
    /indicators/{id}/approve      POST: a senior analyst other than the drafter approves and signs

The checks are `indicators_check` (the engine's loader), the preview `indicators_preview`
(the engine's rescreen), the signing `indicators_signing`; the release is the hub's
(`central.release.release`, the `central release` command's), so the worker holding the
duties lease publishes each bundle once.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from edge_agent.central.console.indicators_check import (
    SCOPE,
    SLOT_LEVELS,
    check_document,
    check_text,
    empty_set,
    indicator_from_form,
    with_indicator,
)
from edge_agent.central.console.indicators_preview import MAX_DAYS, preview
from edge_agent.central.console.indicators_signing import (
    NoKey,
    add_signature,
    bodies,
    dumps,
    next_version,
    payloads,
    signers,
    user_key,
)
from edge_agent.central.console.pages import (
    console_of,
    guard,
    not_found,
    now,
    refused,
    render_page,
    session_of,
    to_login,
)
from edge_agent.central.ledger import Ledger
from edge_agent.central.release import destination, release
from edge_agent.local_rules.fields import FIELDS
from edge_agent.local_rules.operators import OPS
from edge_agent.web.accounts import Session

log = logging.getLogger(__name__)

PREVIEW_DAYS = 7


def _slot_approved(ledger: Ledger, level: str, scope: str) -> list[dict[str, Any]]:
    return [d for d in ledger.drafts(10_000)
            if d["status"] == "approved" and (d["level"], d["scope"]) == (level, scope)]


async def drafts_page(request: Request, errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    if session_of(request) is None:
        return to_login(request)
    drafts = await console_of(request).read(lambda ledger: ledger.drafts(200))
    return render_page(request, "indicators.html", {"drafts": drafts, "errors": errors or {},
                                                    "levels": SLOT_LEVELS}, status_code=status_code)


async def new_draft(request: Request) -> Response:
    checked = await guard(request, "indicator_draft")
    if isinstance(checked, Response):
        return checked
    session, data = checked
    console = console_of(request)
    level, scope = str(data.get("level", "")), str(data.get("scope", "")).strip()
    if level == "central":
        scope = scope or "central"
    errors = {}
    if level not in SLOT_LEVELS:
        errors["level"] = "one of " + ", ".join(SLOT_LEVELS)
    if not SCOPE.match(scope) or (level == "central" and scope != "central"):
        errors["scope"] = "the central set's scope is 'central'; a region's or a site's id otherwise"
    if errors:
        console.record(session, "indicator_draft", "rejected", "; ".join(f"{k}: {e}" for k, e in errors.items()),
                       {"level": level, "scope": scope})
        return await drafts_page(request, errors, 422)

    def create(ledger: Ledger) -> int:
        approved = _slot_approved(ledger, level, scope)
        document = json.loads(approved[0]["document"]) if approved else released_set(ledger, level, scope)
        return ledger.create_draft(level, scope, json.dumps(document, indent=2), session.user.username)

    draft_id = await console.read(create)
    console.record(session, "indicator_draft", "done", "new draft", {"draft": draft_id, "slot": f"{level}:{scope}"})
    return RedirectResponse(f"/indicators/{draft_id}", status_code=303)


def released_set(ledger: Ledger, level: str, scope: str) -> dict[str, Any]:
    """The set last released for the slot another way (`central release`), else an empty
    one: a draft that started empty would withdraw every indicator of the released set."""
    found = destination_of(level, scope)
    payload = ledger.latest_full_bundle(found) if found else None
    try:
        document = json.loads(payload)["bundle"]["signed"]["indicators"] if payload else None
    except (ValueError, KeyError, TypeError):
        document = None
    return document if isinstance(document, dict) else empty_set(f"{scope}-draft")


def destination_of(level: str, scope: str) -> str:
    """The topic of a slot's bundles (release.py's rule, from a minimal bundle)."""
    probe = json.dumps({"bundle": {"signed": {"level": level, "scope": scope, "version": 0, "kind": "full"}}})
    found = destination(probe.encode())
    return "" if isinstance(found, str) else found.topic


def _draft_id(request: Request) -> int | None:
    text = request.path_params["draft"]
    return int(text) if text.isdigit() and len(text) < 12 else None


async def draft_page(request: Request, *, text: str | None = None, errors: list[tuple[str, str]] | None = None,
                     form: dict[str, Any] | None = None, form_errors: dict[str, str] | None = None,
                     status_code: int = 200, problem: str = "", shown: Any = None, days: int = 0) -> Response:
    if session_of(request) is None:
        return to_login(request)
    console = console_of(request)
    draft_id = _draft_id(request)
    draft = await console.read(lambda ledger: ledger.draft(draft_id)) if draft_id is not None else None
    if draft is None:
        return not_found(request, "no such indicator draft")
    context: dict[str, Any] = {"d": draft, "text": draft["document"] if text is None else text,
                               "errors": errors or [], "form": form or {}, "form_errors": form_errors or {},
                               "fields": sorted(FIELDS), "ops": OPS, "problem": problem, "preview": shown,
                               "days": days or PREVIEW_DAYS, "signers": []}
    if draft["signed"]:
        context["signers"] = signers(json.loads(draft["signed"]))
    if text is None and not errors:
        checked = check_text(draft["document"], _channels(request))
        context["errors"] = checked.errors
    return render_page(request, "indicator.html", context, status_code=status_code)


async def preview_page(request: Request) -> Response:
    """GET /indicators/{id}/preview?days=N: the draft against the routed records of N days."""
    session = session_of(request)
    if session is None:
        return to_login(request)
    console = console_of(request)
    draft_id = _draft_id(request)
    draft = await console.read(lambda ledger: ledger.draft(draft_id)) if draft_id is not None else None
    if draft is None:
        return not_found(request, "no such indicator draft")
    days_text = request.query_params.get("days", str(PREVIEW_DAYS))
    if not days_text.isdigit() or not 1 <= int(days_text) <= MAX_DAYS:
        return await _refused(request, session, "indicator_preview", "bad days",
                              {"draft": draft_id, "days": days_text[:20]},
                              f"days: a whole number from 1 to {MAX_DAYS}", 422)
    days = int(days_text)
    checked = check_text(draft["document"], _channels(request))
    if not checked.ok or checked.rules is None:
        return await _refused(request, session, "indicator_preview", "invalid draft", {"draft": draft_id},
                              "the draft is not valid: fix the errors first", 422)
    at = now()
    records = await console.read(lambda ledger: ledger.routed_since(at - timedelta(days=days)))
    result = preview(checked.rules, records, console.settings.policy, now=at, days=days)
    console.counters["indicator_preview:done"] += 1
    log.info("indicator_preview draft=%s days=%d records=%d hit=%d", draft_id, days, result.records, result.hit)
    return await draft_page(request, shown=result, days=days)


def _channels(request: Request) -> list[str]:
    return [c.code for c in console_of(request).settings.policy.channels]


async def _refused(request: Request, session: Session, action: str, reason: str, details: dict[str, Any],
                   problem: str, status_code: int) -> Response:
    """A draft action refused: counted, audited and logged, and the draft shown with why."""
    console_of(request).record(session, action, "rejected", reason, details)
    return await draft_page(request, problem=problem, status_code=status_code)


async def _editable(request: Request, action: str) -> tuple[Session, Any, dict[str, Any]] | Response:
    draft_id = _draft_id(request)
    checked = await guard(request, action, {"draft": draft_id})
    if isinstance(checked, Response):
        return checked
    session, data = checked
    draft = await console_of(request).read(lambda ledger: ledger.draft(draft_id)) if draft_id is not None else None
    if draft is None:
        console_of(request).record(session, action, "rejected", "no such draft", {"draft": draft_id})
        return not_found(request, "no such indicator draft")
    return session, data, draft


async def save_json(request: Request) -> Response:
    found = await _editable(request, "indicator_draft")
    if isinstance(found, Response):
        return found
    session, data, draft = found
    console = console_of(request)
    text = data.get("document", "")
    text = text if isinstance(text, str) else ""
    checked = check_text(text, _channels(request))
    if not checked.ok:
        console.record(session, "indicator_draft", "rejected", f"{len(checked.errors)} error(s)",
                       {"draft": draft["id"], "first": ": ".join(checked.errors[0]) if checked.errors else ""})
        return await draft_page(request, text=text, errors=checked.errors, status_code=422)
    return await _store(request, session, draft, checked.document or {})


async def save_indicator(request: Request) -> Response:
    found = await _editable(request, "indicator_draft")
    if isinstance(found, Response):
        return found
    session, data, draft = found
    console = console_of(request)
    indicator, form_errors = indicator_from_form(data, draft["level"])
    document = with_indicator(json.loads(draft["document"]), indicator)
    checked = check_document(document, _channels(request))
    if form_errors or not checked.ok:
        console.record(session, "indicator_draft", "rejected", "the indicator's form",
                       {"draft": draft["id"], "indicator": indicator.get("id", "")})
        return await draft_page(request, errors=checked.errors, form=dict(data), form_errors=form_errors,
                                status_code=422)
    return await _store(request, session, draft, document)


async def _store(request: Request, session: Session, draft: dict[str, Any], document: dict[str, Any]) -> Response:
    console = console_of(request)
    text = json.dumps(document, indent=2)
    stored = await console.read(lambda ledger: ledger.update_draft(draft["id"], text, session.user.username))
    if not stored:
        return await _refused(request, session, "indicator_draft", "already submitted", {"draft": draft["id"]},
                              "this draft was submitted: it can no longer change; start a new draft", 409)
    console.record(session, "indicator_draft", "done", "edited", {"draft": draft["id"]})
    return RedirectResponse(f"/indicators/{draft['id']}", status_code=303)


async def submit(request: Request) -> Response:
    found = await _editable(request, "indicator_submit")
    if isinstance(found, Response):
        return found
    session, _, draft = found
    console = console_of(request)
    details = {"draft": draft["id"], "slot": f"{draft['level']}:{draft['scope']}"}
    if draft["status"] != "draft":
        return await _refused(request, session, "indicator_submit", "not a draft", details,
                              f"this draft is {draft['status']} already", 409)
    checked = check_text(draft["document"], _channels(request))
    if not checked.ok or checked.document is None:
        return await _refused(request, session, "indicator_submit", "invalid draft", details,
                              "the draft is not valid: fix the errors first", 422)
    try:
        key = user_key(console.settings.keys_dir, session.user.username)
    except NoKey:
        key = ""  # the drafter holds no key: the approver's signature alone (a threshold-1 role)
    document = checked.document
    slot = f"{draft['level']}:{draft['scope']}"

    def do(ledger: Ledger) -> tuple[int, bool]:
        approved = _slot_approved(ledger, draft["level"], draft["scope"])
        version = next_version(slot, [int(d["version"]) for d in approved], [b[0] for b in ledger.bundles(1000)])
        base = (int(approved[0]["version"]), json.loads(approved[0]["document"])) if approved else None
        unsigned = bodies(document, level=draft["level"], scope=draft["scope"], version=version, now=now(),
                          base=base)
        signed: dict[str, Any] = {k: ({"signed": b, "signatures": []} if b else None) for k, b in unsigned.items()}
        if key:
            signed = add_signature(signed, key)
        return version, ledger.submit_draft(draft["id"], session.user.username, version, dumps(signed))

    version, done = await console.read(do)
    if not done:
        return await _refused(request, session, "indicator_submit", "changed meanwhile", details,
                              "the draft changed meanwhile; look again", 409)
    console.record(session, "indicator_submit", "done", f"version {version}",
                   {**details, "version": version, "signed": bool(key)})
    return RedirectResponse(f"/indicators/{draft['id']}", status_code=303)


async def approve(request: Request) -> Response:
    found = await _editable(request, "indicator_approve")
    if isinstance(found, Response):
        return found
    session, _, draft = found
    console = console_of(request)
    details = {"draft": draft["id"], "slot": f"{draft['level']}:{draft['scope']}", "version": draft["version"]}
    if draft["status"] != "submitted":
        return await _refused(request, session, "indicator_approve", f"status {draft['status']}", details,
                              "only a submitted draft can be approved", 409)
    if session.user.username in (draft["drafted_by"], draft["submitted_by"], draft["edited_by"]):
        return refused(request, session, "indicator_approve",
                       "a second person approves: you drafted, edited or submitted this set", 403, details)
    try:
        key = user_key(console.settings.keys_dir, session.user.username)
    except NoKey as err:
        return await _refused(request, session, "indicator_approve", str(err), details, f"cannot sign: {err}", 409)
    signed = add_signature(json.loads(draft["signed"]), key)

    def do(ledger: Ledger) -> list[str] | None:
        if not ledger.approve_draft(draft["id"], session.user.username, dumps(signed)):
            return None
        released = []
        for payload in payloads(signed):
            where = release(ledger, payload)
            released.append(where if isinstance(where, str) else where[0].label)
        return released

    released = await console.read(do)
    if released is None:
        return await _refused(request, session, "indicator_approve", "a newer version was approved meanwhile", details,
                              "a newer version of this set was approved meanwhile: start a new draft from it", 409)
    console.record(session, "indicator_approve", "done", "signed and released", {**details, "bundles": released})
    log.info("indicator_set_released draft=%s slot=%s version=%s approved_by=%s bundles=%s", draft["id"],
             details["slot"], draft["version"], session.user.username, ",".join(released))
    return RedirectResponse(f"/indicators/{draft['id']}", status_code=303)
