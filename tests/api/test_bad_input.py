"""Bad input on every route that takes input: a clear 4xx problem, and nothing stored or changed.

tests/api/test_people.py already covers bad profiles field by field; this suite goes across
routes (programs, enrolments, rounds, webhooks, keys) and adds hostile shapes: deep nesting,
huge arrays, unicode edge cases, injection strings, pins that break hard rules. Each case
takes a snapshot of every table before the request and compares after it (tests/api/db_snapshot.py).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import routing

from tests.api.db_snapshot import differences, snapshot
from tests.api.people_payloads import batch_item, person_payload

ROUND_DATE = "2026-11-18"

SQL_INJECTION = ["' OR '1'='1", "1; DROP TABLE people;--", "\" OR 1=1 --", "') UNION SELECT secret_hash FROM api_keys--"]


def _deep_object(depth: int) -> str:
    return '{"a":' * depth + '"leaf"' + "}" * depth


def _deep_list(depth: int) -> str:
    return "[" * depth + "]" * depth


async def _refused(app: Any, client: httpx.AsyncClient, method: str, url: str, headers: dict[str, str], *, allowed: tuple[int, ...] = (422,), **kwargs: Any) -> httpx.Response:
    """Send a bad request; it must be a 4xx problem from ``allowed`` and change no row."""
    before = await snapshot(app)
    response = await client.request(method, url, headers=headers, **kwargs)
    assert response.status_code in allowed, f"{method} {url}: {response.status_code} {response.text[:400]}"
    assert response.headers["content-type"] == "application/problem+json", response.headers
    problem = response.json()
    assert problem["status"] == response.status_code and problem["title"] and problem["detail"]
    assert differences(before, await snapshot(app)) == {}, f"{method} {url} changed data"
    return response


@pytest.fixture
async def world(client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, Any]:
    """A small organisation: boss manages mentor; mentor and mentee are enrolled in a program."""
    people = [
        batch_item("boss", level=12),
        batch_item("mentor", level=9, manager_external_id="boss"),
        batch_item("report", level=5, manager_external_id="mentor", department="Sales"),
        batch_item("mentee", level=5, department="Sales"),
        batch_item("outsider", level=5, department="Sales"),  # not enrolled
    ]
    response = await client.post("/v1/people/batch", json={"people": people}, headers=admin)
    assert response.status_code == 200 and response.json()["errors"] == 0, response.text
    program = (await client.post("/v1/programs", json={"name": "Bad input"}, headers=admin)).json()
    enrolments = [
        {"external_id": "mentor", "role": "mentor"},
        {"external_id": "mentee", "role": "mentee"},
        {"external_id": "report", "role": "mentee"},
    ]
    url = f"/v1/programs/{program['id']}/enrollments/batch"
    assert (await client.post(url, json={"enrollments": enrolments}, headers=admin)).status_code == 200
    return {"program_id": program["id"]}


# -- shapes that no route should accept --------------------------------------------------------

BODY_ROUTES = [
    ("PUT", "/v1/people/p1"),
    ("PATCH", "/v1/people/mentee"),
    ("POST", "/v1/people/batch"),
    ("POST", "/v1/programs"),
    ("PATCH", "/v1/programs/{program_id}"),
    ("PUT", "/v1/programs/{program_id}/enrollments/outsider"),
    ("POST", "/v1/programs/{program_id}/enrollments/batch"),
    ("POST", "/v1/programs/{program_id}/rounds"),
    ("POST", "/v1/api-keys"),
]

HOSTILE_BODIES = {
    "malformed json": (b'{"name": "x",', (400,)),
    "truncated string": (b'{"name": "x', (400,)),
    "not utf-8": (b'{"name": "\xff\xfe"}', (400, 422)),
    "lone surrogate": (b'{"name": "\\ud800"}', (400, 422)),
    "nan": (b'{"name": NaN}', (400, 422)),
    "top-level array": (b"[1, 2, 3]", (422,)),
    "top-level string": (b'"hello"', (422,)),
    "top-level null": (b"null", (422,)),
    # Deeper than Python's recursion limit: the JSON parser must not turn it into a 500.
    "deep object": (b'{"name": "x", "unexpected": ' + _deep_object(100_000).encode() + b"}", (400, 422)),
    "deep array": (b'{"name": "x", "unexpected": ' + _deep_list(100_000).encode() + b"}", (400, 422)),
    "duplicate keys with unknown field": (b'{"name": "x", "name": "y", "role_": 1}', (422,)),
    "huge number": (b'{"name": "x", "level": ' + b"9" * 5000 + b"}", (400, 422)),
}


@pytest.mark.parametrize("case", list(HOSTILE_BODIES), ids=list(HOSTILE_BODIES))
@pytest.mark.parametrize("method,path", BODY_ROUTES, ids=[f"{m} {p}" for m, p in BODY_ROUTES])
async def test_hostile_bodies_are_refused_everywhere(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str], world: dict[str, Any], method: str, path: str, case: str
) -> None:
    content, allowed = HOSTILE_BODIES[case]
    url = path.format(**world)
    headers = {**admin, "content-type": "application/json"}
    if method == "POST" and path.endswith("/rounds") and case == "top-level null":
        # A round's body is optional: JSON null means "no pins, no blocks" (documented).
        assert (await client.post(url, content=content, headers=headers)).status_code == 202
        return
    await _refused(app, client, method, url, headers, allowed=allowed, content=content)


HUGE_ARRAYS = [
    ("POST", "/v1/people/batch", lambda w: {"people": [batch_item(f"h{i}") for i in range(1001)]}),
    ("POST", "/v1/programs/{program_id}/enrollments/batch", lambda w: {"enrollments": [{"external_id": f"h{i}", "role": "mentee"} for i in range(1001)]}),
    ("PUT", "/v1/programs/{program_id}/enrollments/mentor", lambda w: {"role": "mentor", "blocked": [f"b{i}" for i in range(1001)]}),
    ("PUT", "/v1/programs/{program_id}/enrollments/mentor", lambda w: {"role": "mentor", "preferred": [f"b{i}" for i in range(101)]}),
    ("POST", "/v1/programs/{program_id}/rounds", lambda w: {"pins": [{"mentor": "mentor", "mentee": f"m{i}"} for i in range(20_000)]}),
    ("POST", "/v1/programs/{program_id}/rounds", lambda w: {"blocks": [{"mentor": "mentor", "mentee": f"m{i}"} for i in range(60_000)]}),
    ("PUT", "/v1/people/p1", lambda w: person_payload("p1", languages=["en"] * 10_000)),
]


@pytest.mark.parametrize("method,path,body", HUGE_ARRAYS, ids=[f"{m} {p} #{i}" for i, (m, p, _) in enumerate(HUGE_ARRAYS)])
async def test_huge_arrays_are_refused(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str], world: dict[str, Any], method: str, path: str, body: Any
) -> None:
    # 413 when the array is also over the body cap, 422 when it is only over the item limit.
    await _refused(app, client, method, path.format(**world), admin, allowed=(413, 422), json=body(world))


async def test_a_body_over_the_cap_without_content_length_is_refused(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str], world: dict[str, Any]
) -> None:
    """Chunked upload (no Content-Length): the cap is enforced while reading."""
    cap = app.state.settings.max_body_bytes

    async def chunks() -> Any:
        yield b'{"people": ['
        sent = 0
        while sent <= cap:
            piece = json.dumps(batch_item("c1")).encode() + b","
            sent += len(piece)
            yield piece
        yield b"{}]}"

    await _refused(app, client, "POST", "/v1/people/batch", {**admin, "content-type": "application/json"}, allowed=(413,), content=chunks())


# -- programs, enrolments, rounds ----------------------------------------------------------------

BAD_PROGRAMS = {
    "unknown relationship": {"relationship": "sideways"},
    "unknown objective": {"objective": "fastest"},
    "negative weight": {"weights": {"goals": -1}},
    "all weights zero": {"weights": {"goals": 0, "time_zone": 0, "seniority": 0, "cross_functional": 0}},
    "unknown weight": {"weights": {"charisma": 1}},
    "gap min above max": {"rules": {"level_gap_min": 5, "level_gap_max": 2}},
    "gap out of range": {"rules": {"level_gap_max": 99}},
    "overlap over a day": {"rules": {"min_overlap_hours": 25}},
    "share above one": {"rules": {"min_cross_functional_share": 1.5}},
    "capacity zero": {"rules": {"default_mentor_capacity": 0}},
    "unknown rule": {"rules": {"no_mondays": True}},
    "cross functional value": {"rules": {"cross_functional": "always"}},
    "weights as list": {"weights": [1, 2, 3, 4]},
    "name control chars": {"name": "Mentoring\x00\x1b[31m"},
    "name empty": {"name": "   "},
    "name too long": {"name": "x" * 5000},
    "bool as number": {"rules": {"exclude_management_chain": "yes please"}},
}


@pytest.mark.parametrize("case", list(BAD_PROGRAMS), ids=list(BAD_PROGRAMS))
async def test_bad_programs_are_refused_on_create_and_patch(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str], world: dict[str, Any], case: str
) -> None:
    change = BAD_PROGRAMS[case]
    await _refused(app, client, "POST", "/v1/programs", admin, json={"name": "New", **change})
    url = f"/v1/programs/{world['program_id']}"
    before = (await client.get(url, headers=admin)).json()
    await _refused(app, client, "PATCH", url, admin, json=change)
    assert (await client.get(url, headers=admin)).json() == before


BAD_ENROLMENTS = {
    "unknown person": ("ghost", {"role": "mentee"}, (404, 422)),
    # Not here: blocking an id HRIS has not pushed yet is allowed on purpose (ids are resolved
    # when a round runs, as a manager may arrive after their report).
    "blocks themselves": ("outsider", {"role": "mentee", "blocked": ["outsider"]}, (422,)),
    "capacity for a mentee": ("outsider", {"role": "mentee", "capacity": 2}, (422,)),
    "negative capacity": ("outsider", {"role": "mentor", "capacity": -1}, (422,)),
    "unknown role": ("outsider", {"role": "sponsor"}, (422,)),
    "blocked and preferred": ("outsider", {"role": "mentee", "blocked": ["mentor"], "preferred": ["mentor"]}, (422,)),
    "bad id in blocked": ("outsider", {"role": "mentee", "blocked": ["has space"]}, (422,)),
}


@pytest.mark.parametrize("case", list(BAD_ENROLMENTS), ids=list(BAD_ENROLMENTS))
async def test_bad_enrolments_are_refused(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str], world: dict[str, Any], case: str
) -> None:
    person, body, allowed = BAD_ENROLMENTS[case]
    program = f"/v1/programs/{world['program_id']}"
    await _refused(app, client, "PUT", f"{program}/enrollments/{person}", admin, allowed=allowed, json=body)
    # The batch form reports the item as an error and stores nothing either.
    before = await snapshot(app)
    response = await client.post(f"{program}/enrollments/batch", json={"enrollments": [{"external_id": person, **body}]}, headers=admin)
    if response.status_code == 200:
        assert response.json()["results"][0]["status"] == "error", response.text
    else:
        assert response.status_code in (404, 422), response.text
    assert differences(before, await snapshot(app)) == {}


async def test_an_erased_person_cannot_be_enrolled(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str], world: dict[str, Any]
) -> None:
    assert (await client.delete("/v1/people/outsider", headers=admin)).status_code == 204
    url = f"/v1/programs/{world['program_id']}/enrollments/outsider"
    await _refused(app, client, "PUT", url, admin, allowed=(404, 409, 422), json={"role": "mentee"})


BAD_ROUNDS = {
    "pin with unknown mentor": {"pins": [{"mentor": "ghost", "mentee": "mentee"}]},
    "pin with unknown mentee": {"pins": [{"mentor": "mentor", "mentee": "ghost"}]},
    "pin of someone not enrolled": {"pins": [{"mentor": "mentor", "mentee": "outsider"}]},
    "pin of a person to themselves": {"pins": [{"mentor": "mentor", "mentee": "mentor"}]},
    "pin inside the management chain": {"pins": [{"mentor": "mentor", "mentee": "report"}]},
    "pin with roles swapped": {"pins": [{"mentor": "mentee", "mentee": "mentor"}]},
    "pinned and blocked": {"pins": [{"mentor": "mentor", "mentee": "mentee"}], "blocks": [{"mentor": "mentor", "mentee": "mentee"}]},
    "mentee pinned twice": {"pins": [{"mentor": "mentor", "mentee": "mentee"}, {"mentor": "boss", "mentee": "mentee"}]},
    "block with unknown people": {"blocks": [{"mentor": "ghost", "mentee": "phantom"}]},
    "bad round date": {"round_date": "2026-02-30"},
    "round date as number": {"round_date": 20261118},
    "unknown option": {"solver": "greedy"},
    "pin with extra field": {"pins": [{"mentor": "mentor", "mentee": "mentee", "why": "friends"}]},
}


@pytest.mark.parametrize("case", list(BAD_ROUNDS), ids=list(BAD_ROUNDS))
async def test_bad_round_triggers_create_no_round(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str], world: dict[str, Any], case: str
) -> None:
    url = f"/v1/programs/{world['program_id']}/rounds"
    body = {"round_date": ROUND_DATE, **BAD_ROUNDS[case]}
    await _refused(app, client, "POST", url, admin, json=body)
    assert (await client.get(url, headers=admin)).json()["items"] == []


async def test_rounds_of_unknown_programs_and_rounds_are_404(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str], world: dict[str, Any]
) -> None:
    for method, url in [
        ("POST", "/v1/programs/999999/rounds"),
        ("GET", "/v1/rounds/999999"),
        ("POST", "/v1/rounds/999999/publish"),
        ("POST", "/v1/rounds/999999/discard"),
        ("GET", "/v1/rounds/999999/matches"),
    ]:
        await _refused(app, client, method, url, admin, allowed=(404,), json={"round_date": ROUND_DATE} if method == "POST" else None)
    for url in ["/v1/rounds/0", "/v1/rounds/-1", "/v1/rounds/abc", f"/v1/rounds/{2**70}", "/v1/programs/1.5/rounds"]:
        await _refused(app, client, "GET", url, admin, allowed=(404, 422))


# -- unicode, injection, headers ---------------------------------------------------------------

VALID_UNICODE = {
    "cjk": "山田 太郎",
    "emoji": "Ana 🌸‍✨",
    "rtl": "مريم العربية",
    "combining": "Zoe\u0308 Ame\u0301lie",  # decomposed accents, kept as sent
    "astral": "𝓚𝓲𝔃𝓾𝓷𝓪",
    "zero width joiner": "👩\u200d💻 Dev",
}


@pytest.mark.parametrize("case", list(VALID_UNICODE), ids=list(VALID_UNICODE))
async def test_unicode_names_and_skills_round_trip_exactly(client: httpx.AsyncClient, admin: dict[str, str], case: str) -> None:
    """Not bad input: real names in real scripts are stored and read back unchanged."""
    text = VALID_UNICODE[case]
    body = person_payload("u1", display_name=text, skills=[{"name": text, "level": 3}])
    assert (await client.put("/v1/people/u1", json=body, headers=admin)).status_code == 201
    stored = (await client.get("/v1/people/u1", headers=admin)).json()
    assert stored["display_name"] == text
    assert [s["name"] for s in stored["skills"]] == [text.lower()] or [s["name"] for s in stored["skills"]] == [text]


BAD_UNICODE = {
    "nul": "Ana\x00",
    "escape sequence": "Ana\x1b[2J",
    "bidi override": "Ana\u202egnp.exe",  # renders reversed in HR tools: a spoofing vector
    "line separator": "Ana\u2028Smith",
    "only zero width": "\u200b\u200b",
    "noncharacter": "Ana\ufffe",
}


@pytest.mark.parametrize("case", list(BAD_UNICODE), ids=list(BAD_UNICODE))
async def test_control_and_invisible_characters_are_refused(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str], case: str
) -> None:
    text = BAD_UNICODE[case]
    await _refused(app, client, "PUT", "/v1/people/u2", admin, json=person_payload("u2", display_name=text))
    await _refused(app, client, "PUT", "/v1/people/u2", admin, json=person_payload("u2", skills=[{"name": text, "level": 2}]))
    await _refused(app, client, "POST", "/v1/programs", admin, json={"name": text})
    assert (await client.get("/v1/people/u2", headers=admin)).status_code == 404


@pytest.mark.parametrize("payload", SQL_INJECTION)
async def test_injection_strings_are_data_not_code(
    app: Any, client: httpx.AsyncClient, admin: dict[str, str], world: dict[str, Any], payload: str
) -> None:
    """In filters and cursors they match nothing or are refused; in text fields they are stored verbatim."""
    response = await client.get("/v1/people", params={"department": payload}, headers=admin)
    assert response.status_code == 200 and response.json()["items"] == []
    await _refused(app, client, "GET", "/v1/people", admin, params={"cursor": payload})
    await _refused(app, client, "GET", f"/v1/programs/{world['program_id']}/enrollments", admin, params={"cursor": payload})
    await _refused(app, client, "PUT", f"/v1/people/{payload}", admin, allowed=(404, 422), json=person_payload("x"))
    body = person_payload("inj", title=payload, department=payload)
    assert (await client.put("/v1/people/inj", json=body, headers=admin)).status_code == 201
    stored = (await client.get("/v1/people/inj", headers=admin)).json()
    assert (stored["title"], stored["department"]) == (payload, payload)
    listed = (await client.get("/v1/people", params={"department": payload}, headers=admin)).json()["items"]
    assert [p["external_id"] for p in listed] == ["inj"]


async def test_header_injection_is_refused(app: Any, client: httpx.AsyncClient, admin: dict[str, str], world: dict[str, Any]) -> None:
    url = f"/v1/programs/{world['program_id']}/rounds"
    body = {"round_date": ROUND_DATE}
    await _refused(app, client, "POST", url, {**admin, "Idempotency-Key": "k" * 256}, json=body)
    await _refused(app, client, "POST", url, {**admin, "Idempotency-Key": ""}, json=body)
    # A webhook URL carrying a header break: refused, so no request line can ever be forged.
    if any(route.path == "/v1/webhooks" for route in routing.iter_route_contexts(app.routes)):
        for url_ in ["https://93.184.215.14/\r\nX-Injected: 1", "https://93.184.215.14/%0d%0aX: 1\n", "javascript:alert(1)", "file:///etc/passwd", "http://127.0.0.1/hook"]:
            await _refused(app, client, "POST", "/v1/webhooks", admin, json={"url": url_, "events": ["round.published"]})


async def test_raw_header_bytes_that_are_not_ascii_are_handled(app: Any, admin: dict[str, str], world: dict[str, Any]) -> None:
    """httpx would refuse to send these; talk ASGI directly, as a hostile proxy could."""
    url = f"/v1/programs/{world['program_id']}/rounds".encode()
    sent: list[dict[str, Any]] = []
    body = json.dumps({"round_date": ROUND_DATE}).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": url.decode(), "raw_path": url, "query_string": b"", "root_path": "", "server": ("kizuna.test", 80),
        "client": ("127.0.0.1", 1234),
        "headers": [
            (b"host", b"kizuna.test"), (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"authorization", admin["Authorization"].encode()), (b"idempotency-key", "clé-\u00ff\r\nX: 1".encode("latin-1")),
            (b"x-request-id", b"\xff\xfe\r\nSet-Cookie: a=b"),
        ],
    }  # fmt: skip
    messages = iter([{"type": "http.request", "body": body, "more_body": False}])

    async def receive() -> dict[str, Any]:
        return next(messages, {"type": "http.disconnect"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    before = await snapshot(app)
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert 200 <= start["status"] < 500, start
    for name, value in start["headers"]:
        assert b"\r" not in value and b"\n" not in value, (name, value)
        assert name.lower() != b"set-cookie"
    if start["status"] >= 400:
        assert differences(before, await snapshot(app)) == {}
