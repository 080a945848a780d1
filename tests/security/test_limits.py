"""Abuse limits: publish rate per tenant, request body size, template sandbox."""

from __future__ import annotations

import pytest
import yaml

from router.texts import TextCatalogue
from tests.harness import Client, Herald

EVENT = {"type": "code.paired", "subject": {"kind": "code", "id": "QR-1", "number": "QR-1"}}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, pg):
    herald = Herald(tmp_path_factory.mktemp("limits"), smtp={"port": 1},
                    api={"publish_rate_per_s": 1, "publish_burst": 3,
                         "max_body_bytes": 20_000})
    herald.start_api()
    yield herald
    herald.stop()


@pytest.mark.slow
def test_publishing_faster_than_the_tenant_rate_gets_429_with_retry_after(deployment,
                                                                         new_tenant_key):
    _, key, _ = new_tenant_key()
    _, other_key, _ = new_tenant_key()
    with Client(deployment.url, key) as client, Client(deployment.url, other_key) as other:
        answers = [client.post("/v1/events", json={**EVENT, "id": f"r{i}"}) for i in range(5)]
        assert [a.status_code for a in answers[:3]] == [202, 202, 202]
        limited = answers[-1]
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) >= 1
        assert limited.json()["error"]["code"] == "rate_limited"
        assert other.post("/v1/events", json={**EVENT, "id": "o1"}).status_code == 202
        assert client.get("/v1/events/r4").status_code == 404  # the refused one was not stored


@pytest.mark.slow
def test_an_oversized_body_is_refused_with_413_before_it_is_read(deployment, new_tenant_key):
    _, key, _ = new_tenant_key()
    with Client(deployment.url, key) as client:
        response = client.post("/v1/events", json={**EVENT, "id": "big",
                                                   "data": {"blob": "x" * 50_000}})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_admin_edited_templates_run_in_a_sandbox(tmp_path):
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "en.yaml").write_text(yaml.safe_dump({"code.paired": {
        "title": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "message": "{{ data.message }}"}}))
    catalogue = TextCatalogue(root=tmp_path)
    doc = {"id": "e", "type": "code.paired", "subject": {"kind": "code", "id": "Q"},
           "data": {"title": "Safe title", "message": "hi"}}
    rendered = catalogue.render(doc, "en", "Code paired")
    assert rendered.title == "Safe title"  # the unsafe template fell back to the literal
    assert "subclasses" not in rendered.title and "class" not in rendered.title


def test_rule_files_cannot_construct_objects(tmp_path):
    from router.errors import RuleFileError
    from router.rulefile import load_ruleset

    (tmp_path / "evil.yaml").write_text("events: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(RuleFileError, match="could not determine a constructor"):
        load_ruleset(tmp_path)
