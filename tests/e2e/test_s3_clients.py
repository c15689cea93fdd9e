"""The S3 tools people already use, unmodified, against `updown serve`: boto3, the aws cli, rclone
(provider ``Other``, its defaults) and s3cmd (``host_base = 127.0.0.1:PORT``), each with the service
credentials (`s3_helpers.service_creds`: the store's own keys on the S3 backend) and with a
signed-in user's temporary credentials (own ``private/`` allowed, another user's refused). In the
cluster run they go through the nginx front to 3 API processes on SeaweedFS.

The aws cli (v1) and s3cmd come from their own virtualenv (``.tools/``, made by ``.ci/run``: the aws
cli pins a botocore of its own) and rclone from Debian; ``UPDOWN_TEST_TOOLS`` may name another
directory holding ``aws`` and ``s3cmd``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.e2e.files_helpers import user
from tests.e2e.s3_helpers import service_creds
from tests.e2e.userpool_helpers import bearer
from tests.support.processes import Server

MIB = 1024 * 1024
BUCKET = "files"
ROOT = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("UPDOWN_TEST_TOOLS", ROOT / ".tools" / "bin"))

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@dataclass(frozen=True)
class Keys:
    """SigV4 credentials and the prefix they may write under."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None
    prefix: str
    foreign: str | None = None  # a prefix these credentials must not reach

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "UPDOWN_", "RCLONE_"))}
        env.update(
            AWS_ACCESS_KEY_ID=self.access_key_id,
            AWS_SECRET_ACCESS_KEY=self.secret_access_key,
            AWS_DEFAULT_REGION="us-east-1",
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        )
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        return env


def _tool(name: str) -> str:
    for candidate in (TOOLS / name, shutil.which(name)):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.fail(f"{name} is not installed: .ci/run installs it (see this module's docstring)")


def _payload(size: int, seed: str) -> bytes:
    return hashlib.shake_256(seed.encode()).digest(size)


@pytest.fixture(scope="module")
def service_keys(server: Server) -> Keys:
    creds = service_creds(server)
    return Keys(creds.access_key_id, creds.secret_access_key, None, "public/clients/")


@pytest.fixture(scope="module")
def user_keys(server: Server) -> Keys:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        me = user(client, server)
        other = user(client, server)
        creds = client.post("/identity/credentials", headers=bearer(me.token)).json()
    return Keys(
        creds["accessKeyId"],
        creds["secretAccessKey"],
        creds["sessionToken"],
        f"private/{me.identity_id}/clients/",
        foreign=f"private/{other.identity_id}/",
    )


@pytest.fixture(scope="module", params=["service", "user"])
def keys(request: pytest.FixtureRequest, service_keys: Keys, user_keys: Keys) -> Keys:
    return service_keys if request.param == "service" else user_keys


def _boto(server: Server, keys: Keys) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=f"{server.url}/s3",
        region_name="us-east-1",
        aws_access_key_id=keys.access_key_id,
        aws_secret_access_key=keys.secret_access_key,
        aws_session_token=keys.session_token,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


# --- boto3 ---------------------------------------------------------------------------------------


def test_boto3_objects_listing_copy_batch_delete_and_multipart(server: Server, keys: Keys, tmp_path: Path) -> None:
    s3 = _boto(server, keys)
    p = f"{keys.prefix}boto/"
    body = _payload(3000, "boto")
    s3.put_object(Bucket=BUCKET, Key=f"{p}a.bin", Body=body, ContentType="application/octet-stream")
    assert s3.get_object(Bucket=BUCKET, Key=f"{p}a.bin")["Body"].read() == body
    ranged = s3.get_object(Bucket=BUCKET, Key=f"{p}a.bin", Range="bytes=10-19")
    assert ranged["Body"].read() == body[10:20]
    assert s3.head_object(Bucket=BUCKET, Key=f"{p}a.bin")["ContentLength"] == len(body)
    s3.put_object(Bucket=BUCKET, Key=f"{p}dir/b.bin", Body=b"b")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=p, Delimiter="/")
    assert [c["Key"] for c in listed.get("Contents", [])] == [f"{p}a.bin"]
    assert [c["Prefix"] for c in listed.get("CommonPrefixes", [])] == [f"{p}dir/"]
    s3.copy_object(Bucket=BUCKET, Key=f"{p}copy.bin", CopySource={"Bucket": BUCKET, "Key": f"{p}a.bin"})
    assert s3.get_object(Bucket=BUCKET, Key=f"{p}copy.bin")["Body"].read() == body
    big = tmp_path / "big.bin"
    big.write_bytes(_payload(20 * MIB, "boto-big"))
    transfer = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB)
    s3.upload_file(str(big), BUCKET, f"{p}big.bin", Config=transfer)
    assert s3.head_object(Bucket=BUCKET, Key=f"{p}big.bin")["ETag"].endswith('-3"')
    back = tmp_path / "back.bin"
    s3.download_file(BUCKET, f"{p}big.bin", str(back), Config=transfer)
    assert back.read_bytes() == big.read_bytes()
    gone = s3.delete_objects(
        Bucket=BUCKET, Delete={"Objects": [{"Key": f"{p}{n}"} for n in ("a.bin", "copy.bin", "big.bin", "dir/b.bin")]}
    )
    assert sorted(d["Key"] for d in gone["Deleted"]) == sorted(
        f"{p}{n}" for n in ("a.bin", "copy.bin", "big.bin", "dir/b.bin")
    )
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix=p)["KeyCount"] == 0
    # The folder emptied a moment ago is no common prefix either (no object starts with it).
    emptied = s3.list_objects_v2(Bucket=BUCKET, Prefix=p, Delimiter="/")
    assert (emptied["KeyCount"], emptied.get("CommonPrefixes", [])) == (0, [])


def test_boto3_temporary_credentials_refused_under_another_users_prefix(server: Server, user_keys: Keys) -> None:
    s3 = _boto(server, user_keys)
    assert user_keys.foreign is not None
    with pytest.raises(ClientError) as denied:
        s3.put_object(Bucket=BUCKET, Key=f"{user_keys.foreign}x.bin", Body=b"x")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as listing:
        s3.list_objects_v2(Bucket=BUCKET, Prefix=user_keys.foreign)
    assert listing.value.response["Error"]["Code"] == "AccessDenied"


# --- aws cli -------------------------------------------------------------------------------------


def _aws(server: Server, keys: Keys, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [_tool("aws"), "--endpoint-url", f"{server.url}/s3", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=keys.env(), timeout=300, check=False)
    if check and done.returncode != 0:
        pytest.fail(f"aws {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def test_aws_cli_cp_ls_sync_mv_and_s3api_multipart(server: Server, keys: Keys, tmp_path: Path) -> None:
    p = f"s3://{BUCKET}/{keys.prefix}cli/"
    big = tmp_path / "big.bin"
    big.write_bytes(_payload(20 * MIB, "cli-big"))
    _aws(server, keys, "s3", "cp", str(big), f"{p}big.bin")  # 8 MiB parts: a multipart upload
    down = tmp_path / "down.bin"
    _aws(server, keys, "s3", "cp", f"{p}big.bin", str(down))
    assert down.read_bytes() == big.read_bytes()
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "one.txt").write_text("one")
    (tree / "sub" / "two.txt").write_text("two")
    _aws(server, keys, "s3", "sync", str(tree), f"{p}tree/")
    listing = _aws(server, keys, "s3", "ls", f"{p}tree/").stdout
    assert "PRE sub/" in listing
    assert "one.txt" in listing
    assert "two.txt" not in listing  # not recursive
    _aws(server, keys, "s3", "mv", f"{p}tree/one.txt", f"{p}moved.txt")
    assert "moved.txt" in _aws(server, keys, "s3", "ls", p).stdout
    key = f"{keys.prefix}cli/api.bin"
    created = json.loads(
        _aws(server, keys, "s3api", "create-multipart-upload", "--bucket", BUCKET, "--key", key).stdout
    )
    upload_id = created["UploadId"]
    part_file = tmp_path / "part.bin"
    part_file.write_bytes(_payload(5 * MIB, "part-1"))
    etags = []
    for number in (1, 2):
        sent = _aws(
            server,
            keys,
            "s3api",
            "upload-part",
            "--bucket",
            BUCKET,
            "--key",
            key,
            "--upload-id",
            upload_id,
            "--part-number",
            str(number),
            "--body",
            str(part_file),
        )
        etags.append(json.loads(sent.stdout)["ETag"])
    parts = json.loads(
        _aws(server, keys, "s3api", "list-parts", "--bucket", BUCKET, "--key", key, "--upload-id", upload_id).stdout
    )
    assert [x["PartNumber"] for x in parts["Parts"]] == [1, 2]
    layout = {"Parts": [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]}
    _aws(
        server,
        keys,
        "s3api",
        "complete-multipart-upload",
        "--bucket",
        BUCKET,
        "--key",
        key,
        "--upload-id",
        upload_id,
        "--multipart-upload",
        json.dumps(layout),
    )
    head = json.loads(_aws(server, keys, "s3api", "head-object", "--bucket", BUCKET, "--key", key).stdout)
    assert head["ContentLength"] == 10 * MIB
    _aws(server, keys, "s3", "rm", "--recursive", p)
    assert _aws(server, keys, "s3", "ls", p, check=False).stdout.strip() == ""


def test_aws_cli_refused_under_another_users_prefix(server: Server, user_keys: Keys, tmp_path: Path) -> None:
    f = tmp_path / "x.txt"
    f.write_text("x")
    done = _aws(server, user_keys, "s3", "cp", str(f), f"s3://{BUCKET}/{user_keys.foreign}x.txt", check=False)
    assert done.returncode != 0
    assert "AccessDenied" in done.stderr


# --- rclone --------------------------------------------------------------------------------------


def _rclone_env(server: Server, keys: Keys) -> dict[str, str]:
    env = keys.env()
    env.update(
        RCLONE_CONFIG_UD_TYPE="s3",
        RCLONE_CONFIG_UD_PROVIDER="Other",
        RCLONE_CONFIG_UD_ENDPOINT=server.url,
        RCLONE_CONFIG_UD_ACCESS_KEY_ID=keys.access_key_id,
        RCLONE_CONFIG_UD_SECRET_ACCESS_KEY=keys.secret_access_key,
        RCLONE_CONFIG_UD_REGION="us-east-1",
        RCLONE_CONFIG="/dev/null",
    )
    if keys.session_token:
        env["RCLONE_CONFIG_UD_SESSION_TOKEN"] = keys.session_token
    return env


def _rclone(server: Server, keys: Keys, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [_tool("rclone"), "--retries", "1", "--low-level-retries", "1", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=_rclone_env(server, keys), timeout=300, check=False)
    if check and done.returncode != 0:
        pytest.fail(f"rclone {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def test_rclone_copy_lsf_check_copyto_delete(server: Server, keys: Keys, tmp_path: Path) -> None:
    remote = f"ud:{BUCKET}/{keys.prefix}rclone"
    src = tmp_path / "src"
    (src / "deep").mkdir(parents=True)
    (src / "a.bin").write_bytes(_payload(300_000, "rclone-a"))
    (src / "deep" / "b.txt").write_text("bee")
    _rclone(server, keys, "copy", str(src), remote)
    assert sorted(_rclone(server, keys, "lsf", "-R", remote).stdout.split()) == ["a.bin", "deep/", "deep/b.txt"]
    _rclone(server, keys, "check", "--download", str(src), remote)
    _rclone(server, keys, "copyto", f"{remote}/a.bin", f"{remote}/a-copy.bin")  # server-side copy
    assert "a-copy.bin" in _rclone(server, keys, "lsf", remote).stdout
    _rclone(server, keys, "delete", remote)
    assert _rclone(server, keys, "lsf", "-R", remote).stdout.strip() == ""


# --- s3cmd ---------------------------------------------------------------------------------------


@pytest.fixture
def s3cmd_config(server: Server, keys: Keys, tmp_path: Path) -> Path:
    host = f"127.0.0.1:{server.port}"
    lines = [
        "[default]",
        f"access_key = {keys.access_key_id}",
        f"secret_key = {keys.secret_access_key}",
        f"access_token = {keys.session_token or ''}",
        f"host_base = {host}",
        f"host_bucket = {host}",
        "use_https = False",
        "signature_v2 = False",
        "bucket_location = us-east-1",
        "multipart_chunk_size_mb = 5",
        "check_ssl_certificate = False",
    ]
    path = tmp_path / "s3cfg"
    path.write_text("\n".join(lines) + "\n")
    return path


def _s3cmd(config: Path, keys: Keys, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [_tool("s3cmd"), "-c", str(config), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=keys.env(), timeout=300, check=False)
    if check and done.returncode != 0:
        pytest.fail(f"s3cmd {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def test_s3cmd_put_multipart_ls_info_cp_del(s3cmd_config: Path, keys: Keys, tmp_path: Path) -> None:
    base = f"s3://{BUCKET}/{keys.prefix}s3cmd/"
    big = tmp_path / "big.bin"
    big.write_bytes(_payload(12 * MIB, "s3cmd-big"))  # three 5 MiB chunks: a multipart upload
    _s3cmd(s3cmd_config, keys, "put", str(big), f"{base}big.bin")
    assert "big.bin" in _s3cmd(s3cmd_config, keys, "ls", base).stdout
    info = _s3cmd(s3cmd_config, keys, "info", f"{base}big.bin").stdout
    assert str(12 * MIB) in info
    _s3cmd(s3cmd_config, keys, "cp", f"{base}big.bin", f"{base}copy.bin")
    back = tmp_path / "back.bin"
    _s3cmd(s3cmd_config, keys, "get", f"{base}copy.bin", str(back))
    assert back.read_bytes() == big.read_bytes()
    _s3cmd(s3cmd_config, keys, "del", "--recursive", "--force", base)
    assert _s3cmd(s3cmd_config, keys, "ls", base).stdout.strip() == ""
