"""Email addresses as account names: one canonical, ASCII form per mailbox, and a masked form for display.

Choices: the local part must be ASCII (dot-atom; no quoted strings, no SMTPUTF8) so a look-alike
Cyrillic "а" can never name a second account; the whole address is lower-cased, because nearly every
provider treats the local part case-insensitively and two accounts differing only in case are a
takeover trap; dots and ``+tags`` are kept (whether they matter is the provider's business). The
domain may be internationalised: it is stored as its IDNA A-label (``xn--…``).
"""

from __future__ import annotations

import encodings.idna
import re
import unicodedata

from updown.errors import InvalidRequest

MAX_LENGTH = 254  # RFC 5321 path limit (256) minus the angle brackets
MAX_LOCAL = 64
MAX_LABEL = 63

_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# IDNA 2003 (the stdlib codec) maps these differently from IDNA 2008, so the mail would go elsewhere.
_DEVIATIONS = frozenset("ßς")
# Cyrillic and Greek letters that look like Latin ones: a label made only of these (like Cyrillic
# "аррӏе") spells an ASCII name it is not, so it is refused (as browsers do before showing it).
_LATIN_LOOKALIKES = frozenset("аеорсуххіјѕԁӏԛԝһкмтвпгьъёїАВЕКМНОРСТУХІЈЅԜοαντικρυωεηχΑΒΕΗΙΚΜΝΟΡΤΥΧΖ")
# UTS #39 "highly restrictive": one script per label, or Latin with these East Asian combinations.
_SCRIPT_SETS = (
    frozenset({"LATIN", "CJK", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "CJK", "BOPOMOFO"}),
    frozenset({"LATIN", "CJK", "HANGUL"}),
)


def normalize_email(value: str) -> str:
    """The canonical form of an email address: ``local@domain``, lower-case, ASCII.

    Raises:
        InvalidRequest: the address is too long, malformed, has a non-ASCII local part, spaces or
            control characters, or a domain that is not valid (IDNA) or mixes scripts.
    """
    if not isinstance(value, str):
        raise InvalidRequest("email must be a string")
    if len(value) > 4 * MAX_LENGTH:  # bound the work before anything else
        raise InvalidRequest(f"email is longer than {MAX_LENGTH} characters")
    address = value.strip()
    if not address:
        raise InvalidRequest("email is missing")
    if any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") for ch in address):
        raise InvalidRequest("email must not contain spaces or control characters")
    if address.count("@") != 1:
        raise InvalidRequest("email must contain exactly one @")
    local, domain = address.split("@")
    if not local.isascii():
        raise InvalidRequest("email local part must be ASCII")
    if not local or len(local) > MAX_LOCAL or not _LOCAL.fullmatch(local):
        raise InvalidRequest("email local part is malformed")
    result = f"{local.lower()}@{_ascii_domain(domain)}"
    if len(result) > MAX_LENGTH:
        raise InvalidRequest(f"email is longer than {MAX_LENGTH} characters")
    return result


def mask_email(email: str) -> str:
    """``alice@example.com`` → ``a***@e***``: enough for a user to recognise, useless to a harvester."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain[:1]}***"


def _ascii_domain(domain: str) -> str:
    if not domain:
        raise InvalidRequest("email domain is missing")
    # The stdlib codec splits on the ideographic full stops too; mirror that before checking labels.
    labels = re.split("[.\u3002\uff0e\uff61]", domain)
    if labels[-1] == "":
        labels.pop()  # one trailing dot (absolute name) is harmless
    if len(labels) < 2:
        raise InvalidRequest("email domain must have a dot")
    ascii_labels = [_ascii_label(label) for label in labels]
    if ascii_labels[-1].isdigit():
        raise InvalidRequest("email domain must be a name, not an address")
    result = ".".join(ascii_labels)
    if len(result) > 253:
        raise InvalidRequest("email domain is too long")
    return result


def _ascii_label(label: str) -> str:
    if not label:
        raise InvalidRequest("email domain has an empty label")
    if label.isascii() and not label.lower().startswith("xn--"):
        lowered = label.lower()
        if not _LDH_LABEL.fullmatch(lowered):
            raise InvalidRequest("email domain is malformed")
        return lowered
    try:
        # Punycode typed by the user is decoded first, so it gets the same script checks.
        unicode_label = encodings.idna.ToUnicode(label.lower()) if label.isascii() else label
        _check_script(unicode_label)
        ascii_label = encodings.idna.ToASCII(unicode_label).decode("ascii").lower()
    except UnicodeError as exc:
        raise InvalidRequest("email domain is not a valid internationalised name") from exc
    # Nameprep can still map a letter to something else (U+037A becomes a space and a mark).
    if not _LDH_LABEL.fullmatch(ascii_label):
        raise InvalidRequest("email domain is malformed")
    return ascii_label


def _check_script(label: str) -> None:
    if label.startswith("-") or label.endswith("-"):
        raise InvalidRequest("email domain is malformed")
    scripts: set[str] = set()
    for ch in label:
        if ch in _DEVIATIONS:
            raise InvalidRequest("email domain uses a character IDNA 2003 and 2008 map differently")
        category = unicodedata.category(ch)
        if ch.isalpha():
            scripts.add(unicodedata.name(ch, "UNKNOWN").split()[0])
        elif not (category.startswith("M") or category == "Nd" or ch == "-"):
            raise InvalidRequest("email domain may only contain letters, digits and hyphens")
    if len(scripts) > 1 and not any(scripts <= allowed for allowed in _SCRIPT_SETS):
        raise InvalidRequest("email domain mixes scripts (look-alike characters)")
    if all(ch in _LATIN_LOOKALIKES or not ch.isalpha() for ch in label):
        raise InvalidRequest("email domain is spelt with look-alike characters")
