"""Abuse limits: publish rate per tenant, request body size, template sandbox."""

from __future__ import annotations

import json
import logging
import resource
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from router.core.config import Config
from router.core.errors import BatchOverBurst, RateLimited, RuleFileError
from router.core.limits import Limiter
from router.routing.texts import TextCatalogue
from router.ruleset.rulefile import load_ruleset
from router.runtime import Runtime
from router.store.db import Database
from tests.conftest import REDIS_URL, ROOT, RULES
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
def test_a_batch_larger_than_the_burst_is_refused_with_413_naming_the_burst(deployment,
                                                                          new_tenant_key):
    _, key, _ = new_tenant_key()
    with Client(deployment.url, key) as client:
        batch = [{**EVENT, "id": f"b{i}"} for i in range(4)]
        refused = client.post("/v1/events:batch", json=batch)
        assert refused.status_code == 413
        assert refused.json()["error"]["code"] == "batch_over_burst"
        assert "publish burst of 3" in refused.json()["error"]["message"]
        assert "split it into batches of at most 3" in refused.json()["error"]["message"]
        assert client.get("/v1/events/b0").status_code == 404
        assert client.post("/v1/events:batch", json=batch[:3]).status_code == 202


@pytest.mark.slow
def test_an_oversized_body_is_refused_with_413_before_it_is_read(deployment, new_tenant_key):
    _, key, _ = new_tenant_key()
    with Client(deployment.url, key) as client:
        response = client.post("/v1/events", json={**EVENT, "id": "big",
                                                   "data": {"blob": "x" * 50_000}})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def chunked(document: dict, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """A body sent with Transfer-Encoding: chunked (a generator has no Content-Length)."""
    body = json.dumps(document).encode()
    for start in range(0, len(body), chunk):
        yield body[start:start + chunk]


@pytest.mark.slow
def test_a_chunked_body_over_the_limit_is_refused_with_413_and_nothing_is_stored(deployment,
                                                                                new_tenant_key):
    _, key, _ = new_tenant_key()
    with Client(deployment.url, key) as client:
        blob = {**EVENT, "id": "chunked-big", "data": {"blob": "x" * 3_000_000}}
        started = time.perf_counter()
        response = client.post("/v1/events", content=chunked(blob),
                               headers={"Content-Type": "application/json"})
        elapsed = time.perf_counter() - started
        assert "content-length" not in {k.lower() for k in response.request.headers}
        print(f"\n3 MB chunked body over a 20 kB limit: {response.status_code} in {elapsed:.2f} s")
        assert response.status_code == 413
        assert response.json()["error"] == {"code": "payload_too_large",
                                            "message": "request body over 20000 bytes"}
        assert client.get("/v1/events/chunked-big").status_code == 404
        small = client.post("/v1/events", content=chunked({**EVENT, "id": "chunked-small"}, 16),
                            headers={"Content-Type": "application/json"})
        assert small.status_code == 202  # chunked uploads under the limit still work


@pytest.fixture(params=["in-process", "redis"])
def five_per_second(request) -> Iterator[Limiter]:
    """A publish limiter at 5 events/s with a burst of 10, in either bucket."""
    limiter = Limiter(5, 10, REDIS_URL if request.param == "redis" else "")
    yield limiter
    limiter.close()


def publish_for(limiter: Limiter, seconds: float, sizes: tuple[int, ...]) -> tuple[int, float]:
    """Offer batches of these sizes in turn for `seconds`; return events admitted, time taken."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    admitted, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        for size in sizes:
            try:
                limiter.take(tenant, size)
                admitted += size
            except (RateLimited, BatchOverBurst):
                pass
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    print(f"\nrate 5/s burst 10, {elapsed:.1f} s of batches of {sizes}: {admitted} events "
          f"admitted (bound {5 * elapsed + 10:.1f})")
    return admitted, elapsed


def test_full_batches_publish_no_faster_than_the_rate(five_per_second):
    admitted, elapsed = publish_for(five_per_second, 2.5, (10,))
    assert 10 <= admitted <= 5 * elapsed + 10  # the burst, then a batch per 2 s


def test_batches_larger_than_the_burst_never_get_around_the_rate(five_per_second):
    admitted, elapsed = publish_for(five_per_second, 2.0, (1000, 11, 10, 1))
    assert 10 <= admitted <= 5 * elapsed + 10


def test_a_batch_over_the_burst_never_fits_and_says_to_split_it(five_per_second):
    with pytest.raises(BatchOverBurst, match="burst of 10.*batches of at most 10"):
        five_per_second.take(f"t-{uuid.uuid4().hex[:8]}", 11)


def test_a_full_batch_that_does_not_fit_yet_says_when_it_will(five_per_second):
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    five_per_second.take(tenant, 10)
    with pytest.raises(RateLimited) as limited:
        five_per_second.take(tenant, 10)
    assert 1.5 < limited.value.retry_after <= 2.0


def test_requests_taken_together_are_admitted_or_refused_each_alone(five_per_second):
    """A publish group's tokens are spent in one call (router.api.publisher): in order,
    each request admitted while tokens last; the one that does not fit is refused alone,
    a later smaller one still fits, and one over the burst says to split it."""
    tenant, other = (f"t-{uuid.uuid4().hex[:8]}" for _ in range(2))
    answers = five_per_second.take_many([(tenant, 4), (tenant, 4), (tenant, 4), (other, 3),
                                         (tenant, 2), (tenant, 11)])
    assert [type(a).__name__ for a in answers] == [
        "float", "float", "RateLimited", "float", "float", "BatchOverBurst"]
    assert [round(a) for a in answers if isinstance(a, float)] == [4, 8, 3, 10]


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
    (tmp_path / "evil.yaml").write_text("events: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(RuleFileError, match="could not determine a constructor"):
        load_ruleset(tmp_path)


def billion_laughs(levels: int = 9) -> str:
    """A rule file whose aliases would expand to 9**levels strings."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(["events: {}", "rules: []", *lines, ""])


def copy_of_shipped_rules(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    return rules


def test_rules_check_refuses_a_billion_laughs_file_at_its_first_anchor_quickly(tmp_path):
    rules = copy_of_shipped_rules(tmp_path)
    (rules / "bomb.yaml").write_text(billion_laughs())
    started = time.perf_counter()
    # the address-space cap keeps a regression from eating the machine's memory
    checked = subprocess.run([sys.executable, "-m", "router.cli", "rules", "check", str(rules)],
                             cwd=ROOT, capture_output=True, text=True, timeout=60,
                             preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (2 << 30,) * 2))
    elapsed = time.perf_counter() - started
    print(f"\nherald rules check on a 9-level bomb: exit {checked.returncode} in {elapsed:.2f} s")
    assert checked.returncode != 0
    assert f"{rules / 'bomb.yaml'}:3:5: YAML anchors and aliases" in checked.stdout + checked.stderr
    assert elapsed < 10  # the interpreter's start-up; the refusal itself is timed below


def test_a_billion_laughs_edit_is_refused_by_the_embedded_deploy_and_the_rules_in_force_stay(
        tmp_path, caplog):
    rules = copy_of_shipped_rules(tmp_path)
    url = f"sqlite:///{tmp_path}/h.db"
    Database(url).migrate()
    runtime = Runtime(Config(database_url=url, broker_url="", redis_url="",
                             rules_path=str(rules)))
    in_force, version = runtime.engine.ruleset, runtime.engine.version
    (rules / "bomb.yaml").write_text(billion_laughs())
    started = time.perf_counter()
    with caplog.at_level(logging.ERROR, logger="herald.rules"):
        runtime.rules.sync()
    elapsed = time.perf_counter() - started
    print(f"\nthe embedded deploy refused a 9-level bomb in {elapsed * 1000:.1f} ms")
    assert elapsed < 0.5
    refused = [r for r in caplog.records if r.getMessage() == "rules.deploy_refused"]
    assert len(refused) == 1 and len(refused[0].problems) == 1
    assert refused[0].problems[0].startswith(f"{rules / 'bomb.yaml'}:3:5: YAML anchors and aliases")
    assert runtime.engine.ruleset is in_force and runtime.engine.version == version
    runtime.close()


def test_a_rule_file_over_the_size_limit_is_refused_naming_the_file_and_the_limit(tmp_path):
    rules = copy_of_shipped_rules(tmp_path)
    big = rules / "big.yaml"
    big.write_text("events: {}\n" + "# padding\n" * ((1 << 20) // 10 + 1))
    with pytest.raises(RuleFileError) as refused:
        load_ruleset(rules)
    assert [p.located() for p in refused.value.problems] == [
        f"{big}:1:1: file is larger than the limit of 1,048,576 bytes for a YAML file "
        "(split it into several files)"]


def test_one_anchor_is_refused_even_when_nothing_refers_to_it(tmp_path):
    (tmp_path / "a.yaml").write_text("events: {}\nrules: []\ndefaults:\n  all: &d {channels: [email]}\n")
    with pytest.raises(RuleFileError, match=r"a\.yaml:4:8: YAML anchors and aliases"):
        load_ruleset(tmp_path)
