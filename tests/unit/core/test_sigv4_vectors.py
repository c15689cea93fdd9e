"""Every case of the AWS SigV4 test suite (tests/vectors/sigv4), signed and verified by core.sigv4."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from updown.core.sigv4 import Credentials, Signer
from updown.core.sigv4verify import RequestParts, VerifiedRequest, verify
from updown.errors import AccessDenied, SignatureDoesNotMatch

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "sigv4"
CASES = sorted(p.name for p in VECTORS.iterdir() if p.is_dir())


@dataclass
class HttpRequest:
    method: str
    target: str  # path and query, as on the request line
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    def header(self, name: str) -> str:
        return next(v for n, v in self.headers if n.lower() == name)


def parse_http(raw: bytes) -> HttpRequest:
    head, _, body = raw.partition(b"\n\n")
    lines = head.decode("utf-8").split("\n")
    method, _, rest = lines[0].partition(" ")
    target = rest.rsplit(" ", 1)[0]  # the path may hold spaces ("/example space/")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):  # obsolete line folding: continues the previous value
            name, value = headers[-1]
            headers[-1] = (name, f"{value}\n{line}")
        elif line:
            name, _, value = line.partition(":")
            headers.append((name, value))
    return HttpRequest(method, target, headers, body)


@dataclass
class Case:
    name: str
    context: dict[str, object]
    request: HttpRequest

    def read(self, name: str) -> str:
        return (VECTORS / self.name / name).read_text(encoding="utf-8")

    @property
    def now(self) -> datetime:
        return datetime.fromisoformat(str(self.context["timestamp"]))

    @property
    def normalize(self) -> bool:
        return bool(self.context["normalize"])

    def credentials(self, *, for_signing: bool) -> Credentials:
        creds = self.context["credentials"]
        assert isinstance(creds, dict)
        # "omit_session_token": the token travels with the request but stays out of the signature.
        token = None if for_signing and self.context.get("omit_session_token") else creds.get("token")
        return Credentials(creds["access_key_id"], creds["secret_access_key"], token)

    def signer(self) -> Signer:
        return Signer(
            self.credentials(for_signing=True),
            str(self.context["region"]),
            str(self.context["service"]),
            normalize_path=self.normalize,
        )

    @property
    def url(self) -> str:
        return f"http://{self.request.header('host')}{self.request.target}"

    @property
    def headers(self) -> list[tuple[str, str]]:
        return [(n, v) for n, v in self.request.headers if n.lower() != "host"]

    @property
    def payload_hash(self) -> str:
        return hashlib.sha256(self.request.body).hexdigest()


def load(name: str) -> Case:
    context = json.loads((VECTORS / name / "context.json").read_text())
    return Case(name, context, parse_http((VECTORS / name / "request.txt").read_bytes()))


def verify_signed(case: Case, signed_file: str, payload_hash: str | None) -> VerifiedRequest:
    """Runs the verifier on a signed request of the suite, as an ASGI server would hand it over."""
    req = parse_http((VECTORS / case.name / signed_file).read_bytes())
    parts = RequestParts(
        req.method,
        req.path.encode(),
        req.query.encode(),
        [(n.lower().encode(), v.encode()) for n, v in req.headers],
    )
    return verify(
        parts,
        credentials=case.credentials(for_signing=False),
        now=case.now,
        region=str(case.context["region"]),
        service=str(case.context["service"]),
        normalize_path=case.normalize,
        payload_hash=payload_hash,
    )


def test_sigv4_vectors_all_cases_present() -> None:
    assert len(CASES) == 38
    assert sum(not load(c).normalize for c in CASES) == 7


@pytest.mark.parametrize("name", CASES)
def test_sigv4_header_form_matches_vector(name: str) -> None:
    case = load(name)
    signed = case.signer().sign_headers(
        case.request.method,
        case.url,
        now=case.now,
        headers=case.headers,
        payload_hash=case.payload_hash,
        add_content_sha256=bool(case.context["sign_body"]),
    )
    assert signed.canonical_request == case.read("header-canonical-request.txt")
    assert signed.string_to_sign == case.read("header-string-to-sign.txt")
    assert signed.signature == case.read("header-signature.txt")
    expected = parse_http((VECTORS / name / "header-signed-request.txt").read_bytes())
    assert signed.headers["Authorization"] == expected.header("authorization")


@pytest.mark.parametrize("name", CASES)
def test_sigv4_query_form_matches_vector(name: str) -> None:
    case = load(name)
    signed = case.signer().presign_explained(
        case.request.method,
        case.url,
        expires=int(str(case.context["expiration_in_seconds"])),
        now=case.now,
        headers=case.headers,
        payload_hash=case.payload_hash,
    )
    assert signed.canonical_request == case.read("query-canonical-request.txt")
    assert signed.string_to_sign == case.read("query-string-to-sign.txt")
    assert signed.signature == case.read("query-signature.txt")
    assert signed.url.endswith(f"&X-Amz-Signature={signed.signature}")


@pytest.mark.parametrize("name", CASES)
def test_sigv4_verify_header_signed_vector_accepts(name: str) -> None:
    case = load(name)
    # Unsigned bodies carry no x-amz-content-sha256: the (empty) body hash is what was signed.
    payload_hash = None if case.context["sign_body"] else case.payload_hash
    if case.context.get("omit_session_token"):
        # The token header is present but unsigned; S3 refuses unsigned x-amz-* headers.
        with pytest.raises(AccessDenied):
            verify_signed(case, "header-signed-request.txt", payload_hash)
        return
    verified = verify_signed(case, "header-signed-request.txt", payload_hash)
    assert not verified.presigned
    assert verified.access_key_id == "AKIDEXAMPLE"
    assert verified.header("host") == "example.amazonaws.com"
    assert verified.expires_at is None


@pytest.mark.parametrize("name", CASES)
def test_sigv4_verify_query_signed_vector_accepts(name: str) -> None:
    case = load(name)
    if case.context.get("omit_session_token"):
        # A token in the query is always signed, as S3 has it.
        with pytest.raises(SignatureDoesNotMatch):
            verify_signed(case, "query-signed-request.txt", case.payload_hash)
        return
    verified = verify_signed(case, "query-signed-request.txt", case.payload_hash)
    assert verified.presigned
    assert verified.expires_at == verified.timestamp + int(str(case.context["expiration_in_seconds"]))
    expected_block = case.read("query-canonical-request.txt").split("\n\n")[0].split("\n", 3)[3]
    assert [f"{n}:{v}" for n, v in verified.signed_headers] == expected_block.split("\n")
