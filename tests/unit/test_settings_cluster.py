"""The settings a cluster behind nginx needs: server.trusted_proxies, s3.public_endpoint_url and
mail.outbox, as loaded, refused, and used by the presigner, the CSP and the outbox."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from updown import settings
from updown.clock import FrozenClock
from updown.core.sigv4 import Credentials
from updown.core.sigv4verify import RequestParts, verify
from updown.errors import ConfigError, SignatureDoesNotMatch
from updown.mail.base import MailMessage
from updown.mail.outbox import FILENAME, Outbox, location
from updown.runtime import build_presigner
from updown.web.ui.csp import content_security_policy, data_plane_origins

S3_ENV = {
    "UPDOWN_STORAGE__BACKEND": "s3",
    "UPDOWN_S3__ENDPOINT_URL": "http://seaweedfs:8333",
    "UPDOWN_S3__ACCESS_KEY_ID": "AKIDCLUSTER",
    "UPDOWN_S3__SECRET_ACCESS_KEY": "cluster-secret",
}


def load(tmp_path: Path, **env: str) -> settings.Settings:
    return settings.load(data_dir=tmp_path / "data", environ=env)


# --- server.trusted_proxies ---------------------------------------------------------------------


def test_trusted_proxies_default_trusts_no_one(tmp_path: Path) -> None:
    assert load(tmp_path).server.trusted_proxies == ()


@pytest.mark.parametrize("value", ["127.0.0.0/8, ::1,10.0.0.0/8", '["127.0.0.0/8", "::1", "10.0.0.0/8"]'])
def test_trusted_proxies_from_env_as_commas_or_json(tmp_path: Path, value: str) -> None:
    s = load(tmp_path, UPDOWN_SERVER__TRUSTED_PROXIES=value)
    assert s.server.trusted_proxies == ("127.0.0.0/8", "::1", "10.0.0.0/8")


def test_trusted_proxies_from_toml(tmp_path: Path) -> None:
    cfg = tmp_path / "u.toml"
    cfg.write_text('[server]\ntrusted_proxies = ["172.16.0.0/12"]\n')
    s = settings.load(data_dir=tmp_path / "d", config=cfg, environ={})
    assert s.server.trusted_proxies == ("172.16.0.0/12",)


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "nginx", "10.0.0.0/8,localhost"])
def test_trusted_proxies_not_a_network_refused_by_name(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match=r"server\.trusted_proxies"):
        load(tmp_path, UPDOWN_SERVER__TRUSTED_PROXIES=bad)


# --- s3.public_endpoint_url ---------------------------------------------------------------------


def test_presigned_urls_signed_for_the_public_endpoint(tmp_path: Path) -> None:
    s = load(tmp_path, **S3_ENV, UPDOWN_S3__PUBLIC_ENDPOINT_URL="http://localhost:8333")
    clock = FrozenClock()
    presigner = build_presigner(s, Credentials("unused", "unused"), clock)
    target = presigner.put(
        "uploads/a.png", content_type="image/png", content_length=3, metadata={}, cache_control=None, expires=60
    )
    url = urlsplit(target.url)
    assert f"{url.scheme}://{url.netloc}" == "http://localhost:8333"
    # The signature binds that host: it verifies as sent there, and not as sent to endpoint_url.
    creds = Credentials(s.s3.access_key_id, s.s3.secret_access_key)

    def sent_to(host: str) -> RequestParts:
        headers = [("host", host), *((k.lower(), v) for k, v in target.headers.items())]
        return RequestParts("PUT", url.path, url.query, headers)

    verify(sent_to("localhost:8333"), credentials=creds, region=s.s3.region, now=clock.now())
    with pytest.raises(SignatureDoesNotMatch):
        verify(sent_to("seaweedfs:8333"), credentials=creds, region=s.s3.region, now=clock.now())
    get = presigner.get("a.png", expires=60, content_type="image/png")
    assert get.startswith("http://localhost:8333/files/a.png?")


def test_presigned_urls_default_to_endpoint_url(tmp_path: Path) -> None:
    s = load(tmp_path, **S3_ENV)
    url = build_presigner(s, Credentials("unused", "unused"), FrozenClock()).get(
        "a.png", expires=60, content_type="image/png"
    )
    assert url.startswith("http://seaweedfs:8333/files/a.png?")


def test_csp_allows_the_public_endpoint_not_the_internal_one(tmp_path: Path) -> None:
    public = load(tmp_path, **S3_ENV, UPDOWN_S3__PUBLIC_ENDPOINT_URL="https://s3.example.com/")
    assert "https://s3.example.com" in data_plane_origins(public)
    assert "seaweedfs" not in content_security_policy(public)
    internal = load(tmp_path, **S3_ENV)
    assert "http://seaweedfs:8333" in data_plane_origins(internal)


@pytest.mark.parametrize("bad", ["localhost:8333", "ftp://host", "http://", "http://host?x=1"])
def test_public_endpoint_not_an_http_url_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match=r"s3\.public_endpoint_url"):
        load(tmp_path, **S3_ENV, UPDOWN_S3__PUBLIC_ENDPOINT_URL=bad)


# --- mail.outbox --------------------------------------------------------------------------------


def test_outbox_default_in_the_data_dir_else_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert location(load(tmp_path)) == tmp_path / "data" / FILENAME
    shared = tmp_path / "shared" / "mail.jsonl"
    assert location(load(tmp_path, UPDOWN_MAIL__OUTBOX=str(shared))) == shared
    monkeypatch.chdir(tmp_path)
    assert location(load(tmp_path, UPDOWN_MAIL__OUTBOX="rel/out.jsonl")) == tmp_path / "rel" / "out.jsonl"


def _send_many(data_dir: str, outbox: str, tag: str, n: int) -> None:
    s = settings.load(data_dir=data_dir, environ={"UPDOWN_MAIL__OUTBOX": outbox})
    box = Outbox.of(s, FrozenClock())
    for i in range(n):
        box.send(MailMessage(to=f"{tag}-{i}@example.com", subject="s", body="b", code=f"{i:06d}" + "x" * 3000))


def test_outbox_one_file_shared_by_processes_of_different_data_dirs(tmp_path: Path) -> None:
    # As the cluster's API processes and workers: each its own data dir, one outbox file.
    shared = tmp_path / "outbox.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_send_many, args=(str(tmp_path / f"d{p}"), str(shared), f"p{p}", 40)) for p in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    records = Outbox.of(load(tmp_path, UPDOWN_MAIL__OUTBOX=str(shared)), FrozenClock()).read()
    assert sorted(r["to"] for r in records) == sorted(f"p{p}-{i}@example.com" for p in range(4) for i in range(40))
    assert len(shared.read_bytes().splitlines()) == 160  # no line cut or interleaved
    assert not any((tmp_path / f"d{p}" / FILENAME).exists() for p in range(4))
    assert os.stat(shared).st_mode & 0o777 == 0o600
