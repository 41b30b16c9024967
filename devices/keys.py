"""Device keys: `kgr_<kind>_<company id>_<prefix>_<secret>`.

The kind, company and prefix are public: they find the one device row with one indexed
lookup that starts with the company, like every other lookup (the prefix is unique per
company and kind), so the tables stay shardable by company. The secret is 32 random
bytes; only a SHA-256 of the whole key is stored. A slow password hash would add nothing
here: the key has 256 bits of entropy, so there is nothing to guess, and a heartbeat
every few seconds per device must stay cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

KEY_TAG = "kgr"
PREFIX_BYTES = 6  # 12 hex characters: unique enough to index, short enough to quote on the phone


@dataclass(frozen=True)
class IssuedKey:
    key: str  # shown once, never stored
    prefix: str
    hash: str


@dataclass(frozen=True)
class ParsedKey:
    kind: str
    company_id: int
    prefix: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_key(kind: str, company_id: int) -> IssuedKey:
    prefix = secrets.token_hex(PREFIX_BYTES)  # hex: never contains the "_" separator
    key = f"{KEY_TAG}_{kind}_{company_id}_{prefix}_{secrets.token_urlsafe(32)}"
    return IssuedKey(key=key, prefix=prefix, hash=hash_key(key))


def parse_key(key: str) -> ParsedKey | None:
    parts = key.split("_", 4)  # the secret itself may contain "_"
    if len(parts) != 5 or parts[0] != KEY_TAG or not parts[3] or not parts[4]:
        return None
    company = parts[2]
    if not (company.isascii() and company.isdigit() and len(company) <= 18):  # fits a bigint
        return None
    return ParsedKey(kind=parts[1], company_id=int(company), prefix=parts[3])


def key_matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key), stored_hash)
