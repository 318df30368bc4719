"""The dashboard on a node with --auth-file (issue 16): the static shell loads, but no
data is shown without a token; a read token sees everything and can act on nothing;
a voter votes only as itself."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.harness import Cluster

from .browser import Page
from .conftest import source

READER, ALICE, ADMIN = "reader-token-0123456789", "alice-token-0123456789", "admin-token-0123456789"
REFUSALS = ("401 (Unauthorized)", "403 (Forbidden)")  # Chromium logs refused fetches


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("ui-auth")
    tokens = base / "tokens.yaml"
    tokens.write_text(f"{READER}: {{principal: viewer, role: read}}\n"
                      f"{ALICE}: {{principal: alice, role: write}}\n"
                      f"{ADMIN}: {{principal: ops, role: admin}}\n")
    cluster = Cluster(base, n=1, extra_args=["--auth-file", str(tokens)])
    try:
        cluster.start()
        http = cluster.http(0)
        r = http.put("/v1/machines/approval", body=source("approval"), content_type="application/yaml",
                     headers=bearer(ADMIN))
        assert r.status == 201, r
        for path, body in (("create", {"data": {"title": "Secret plan"}}), ("submit", {}), ("approve", {})):
            r = http.post(f"/v1/machines/approval/objects/s-1/transitions/{path}", json=body,
                          headers=bearer(ALICE))
            assert r.status in (200, 201, 202), r
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def spage(driver: Any, secured: Cluster) -> Page:
    return Page(driver, secured.urls[0])


def use_token(page: Page, token: str) -> None:
    field = page.wait_css("#token")
    field.clear()
    field.send_keys(token)
    page.click("#token-save")


def test_without_a_token_nothing_is_shown(spage: Page) -> None:
    for fragment in ("#/cluster", "#/machines/approval", "#/objects/approval/s-1", "#/events"):
        spage.open(fragment, "#locked")
        assert "Secret plan" not in spage.text("main") and not spage.all("svg")
    spage.screenshot("locked")
    assert spage.console_errors(allow=REFUSALS) == []


def test_a_read_token_sees_but_cannot_act(spage: Page, secured: Cluster) -> None:
    spage.open("#/objects/approval/s-1", "#locked")
    use_token(spage, READER)
    spage.wait_css("#object-diagram g.state.current[data-state='pending']")
    spage.wait_text("#object-data", "Secret plan")
    spage.click("#vote-approve-alice")
    spage.wait_text("#vote-result", "forbidden")
    spage.click("#transition-form #run")
    spage.wait_text("#action-result", "forbidden")
    assert "needs role 'write'" in spage.text("#action-result")
    obj = secured.http(0).get("/v1/machines/approval/objects/s-1", headers=bearer(ADMIN)).json
    assert obj["state"] == "pending" and obj["pending"]["votes"] == {}, obj
    assert spage.console_errors(allow=REFUSALS) == []


def test_a_voter_votes_only_as_itself(spage: Page, secured: Cluster) -> None:
    spage.open("#/objects/approval/s-1", "#token")
    use_token(spage, ALICE)
    spage.click("#vote-approve-bob")
    spage.wait_text("#vote-result", "may vote only as itself")
    spage.click("#vote-approve-alice")
    spage.wait_css("#pending tr[data-voter='alice'] .badge.ok")
    obj = secured.http(0).get("/v1/machines/approval/objects/s-1", headers=bearer(ADMIN)).json
    assert obj["pending"]["votes"] == {"alice": True}, obj
    spage.click("#token-forget")
    spage.wait_css("#locked")
    assert spage.console_errors(allow=REFUSALS) == []
