"""Encrypted exchange credentials: one keyfile, scrypt + AES-256-GCM (``cryptography``).

File format (JSON): ``{"version": 1, "kdf": "scrypt", "n": 2**15, "r": 8, "p": 1,
"salt": b64, "nonce": b64, "ciphertext": b64}``; the plaintext is JSON ``{"entries":
[{"maker", "exchange", "api_key", "secret", "password"}]}``. Every write uses a fresh salt
and nonce and replaces the file atomically (mode 0600). A wrong passphrase or a tampered
file fails the GCM tag check: ``KeyfileError``, never a partial read. The passphrase comes
from ``AGENTPERP_KEYS_PASSPHRASE`` or a prompt; secrets are never printed or logged
(``list`` shows the key's first four characters).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from adapters.hedging.exchanges import Credentials
from ledger.files import replace_durably

PASSPHRASE_ENV = "AGENTPERP_KEYS_PASSPHRASE"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1  # ~32 MiB, ~0.1 s: offline guessing is slow
ENTRIES_MAX = 1_000
KEYFILE_BYTES_MAX = 1024 * 1024


class KeyfileError(Exception):
    """Wrong passphrase, tampered or malformed keyfile."""


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


def load(path: Path | str, passphrase: str) -> list[dict]:
    """The entries of ``path`` (an empty list if it does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    if len(raw) > KEYFILE_BYTES_MAX:
        raise KeyfileError(f"{path}: larger than {KEYFILE_BYTES_MAX} bytes")
    try:
        doc = json.loads(raw)
        assert doc["version"] == 1 and doc["kdf"] == "scrypt"
        key = _derive(passphrase, base64.b64decode(doc["salt"]), doc["n"], doc["r"], doc["p"])
        plain = AESGCM(key).decrypt(base64.b64decode(doc["nonce"]), base64.b64decode(doc["ciphertext"]), b"agentperp-keys-v1")
    except InvalidTag:
        raise KeyfileError(f"{path}: wrong passphrase or the file was altered") from None
    except (ValueError, KeyError, AssertionError) as error:
        raise KeyfileError(f"{path}: not an agentperp keyfile ({type(error).__name__})") from None
    return json.loads(plain)["entries"]


def save(path: Path | str, passphrase: str, entries: list[dict]) -> None:
    if len(entries) > ENTRIES_MAX:
        raise KeyfileError(f"at most {ENTRIES_MAX} entries")
    path = Path(path)
    salt, nonce = os.urandom(16), os.urandom(12)
    key = _derive(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    ciphertext = AESGCM(key).encrypt(nonce, json.dumps({"entries": entries}).encode(), b"agentperp-keys-v1")
    doc = {"version": 1, "kdf": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P,
           "salt": base64.b64encode(salt).decode(), "nonce": base64.b64encode(nonce).decode(),
           "ciphertext": base64.b64encode(ciphertext).decode()}
    replace_durably(path, json.dumps(doc).encode(), mode=0o600)


def add(path, passphrase: str, maker: str, exchange: str, credentials: Credentials) -> None:
    """Add or replace the credentials of (maker, exchange)."""
    entries = [e for e in load(path, passphrase) if (e["maker"], e["exchange"]) != (maker, exchange)]
    entries.append({"maker": maker, "exchange": exchange, "api_key": credentials.api_key,
                    "secret": credentials.secret, "password": credentials.password})
    save(path, passphrase, entries)


def remove(path, passphrase: str, maker: str, exchange: str) -> bool:
    entries = load(path, passphrase)
    kept = [e for e in entries if (e["maker"], e["exchange"]) != (maker, exchange)]
    if len(kept) == len(entries):
        return False
    save(path, passphrase, kept)
    return True


def listing(path, passphrase: str) -> list[dict]:
    """(maker, exchange, key prefix) per entry: nothing secret."""
    return [{"maker": e["maker"], "exchange": e["exchange"], "api_key": e["api_key"][:4] + "…"}
            for e in load(path, passphrase)]


def credentials(path, passphrase: str) -> dict[str, dict[str, Credentials]]:
    """maker → exchange → Credentials, for ``HedgerConfig.makers``."""
    out: dict[str, dict[str, Credentials]] = {}
    for e in load(path, passphrase):
        out.setdefault(e["maker"], {})[e["exchange"]] = Credentials(e["api_key"], e["secret"], e.get("password", ""))
    return out


def passphrase(prompt: bool = True) -> str:
    value = os.environ.get(PASSPHRASE_ENV)
    if value:
        return value
    if not prompt:
        raise KeyfileError(f"set {PASSPHRASE_ENV} or run interactively")
    import getpass

    return getpass.getpass("keyfile passphrase: ")
