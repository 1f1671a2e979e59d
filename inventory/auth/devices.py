"""Device cookies (OWASP's scheme against lockout): a signed note that a client signed in here.

A successful sign-in gives the client a cookie naming the account and a random
nonce. When the client later signs in to that account again and presents the
cookie, the throttle counts its failures per device (per nonce) instead of
against the account and the address, so nobody who does not know the password
can lock the owner out of the devices they used before.

The value is ``v1.<account>.<nonce>.<issued>.<mac>`` (the account in base64url,
``issued`` in Unix seconds), with an HMAC-SHA256 over everything before the
MAC. Its key is derived from the service's secret key with HKDF (RFC 5869)
under a label of its own rather than being the secret itself, and the value is
not a JWT: nothing that verifies access tokens can ever take a device cookie
for one, or the other way round.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

COOKIE_NAME = "inventory_device"
LIFETIME_SECONDS = 365 * 24 * 3600
"""A device stays trusted this long after its last successful sign-in (each renews it)."""
MAX_COOKIE_LENGTH = 1024
_VERSION = "v1"
_KEY_LABEL = b"inventory device cookie v1"
_CLOCK_SKEW_SECONDS = 300


@dataclass(frozen=True)
class Device:
    account: str
    nonce: str
    issued_at: int


def _derived_key(secret_key: str) -> bytes:
    """HKDF-SHA256 (RFC 5869): extract with an empty salt, expand one block for this use."""
    pseudo_random = hmac.new(b"\0" * 32, secret_key.encode(), hashlib.sha256).digest()
    return hmac.new(pseudo_random, _KEY_LABEL + b"\x01", hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret_key: str, payload: str) -> str:
    return _b64(hmac.new(_derived_key(secret_key), payload.encode(), hashlib.sha256).digest())


def issue(account: str, secret_key: str, now: float | None = None) -> str:
    """A new device cookie value for ``account`` (the normalised email), with a fresh nonce."""
    issued = int(time.time() if now is None else now)
    payload = f"{_VERSION}.{_b64(account.encode())}.{secrets.token_urlsafe(16)}.{issued}"
    return f"{payload}.{_mac(secret_key, payload)}"


def read(value: str, secret_key: str, now: float | None = None) -> Device | None:
    """The device a cookie value names, or None when it is malformed, forged or too old."""
    if len(value) > MAX_COOKIE_LENGTH:
        return None
    parts = value.split(".")
    if len(parts) != 5 or parts[0] != _VERSION:
        return None
    _, account, nonce, issued, mac = parts
    payload = value.rsplit(".", 1)[0]
    if not hmac.compare_digest(mac.encode(), _mac(secret_key, payload).encode()):
        return None
    try:
        issued_at = int(issued)
        name = _unb64(account).decode()
    except (ValueError, binascii.Error):
        return None
    current = time.time() if now is None else now
    if not current - LIFETIME_SECONDS < issued_at <= current + _CLOCK_SKEW_SECONDS:
        return None
    return Device(account=name, nonce=nonce, issued_at=issued_at)


def trusted_nonce(value: str | None, account: str, secret_key: str) -> str | None:
    """The nonce of a valid device cookie for ``account``; None for no cookie, a bad one, or
    one for another account (the client is then a stranger to this account)."""
    if not value:
        return None
    device = read(value, secret_key)
    if device is None or not hmac.compare_digest(device.account.encode(), account.encode()):
        return None
    return device.nonce
