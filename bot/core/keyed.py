"""Hashes only this install can compute: HMAC-SHA-256 under the secret its database keeps.

A plain hash of a low-entropy value (a PIN, a yes/no, a Discord id) is read back by trying every
value; under a secret that never leaves the database it is not. Where a hash is shown or sent to
someone else (audit lines, providers), make it here.
"""

from __future__ import annotations

import hashlib
import hmac

MIN_SECRET_BYTES = 32


def keyed_hash(secret: bytes, purpose: str, data: str) -> str:
    """Hex HMAC-SHA-256 of `data`. `purpose` keeps one use's hashes from matching another's
    (the same id hashed for an audit line and for a provider gives two unrelated values)."""
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"an install secret has at least {MIN_SECRET_BYTES} bytes")
    # surrogatepass: a model may produce a lone surrogate, which still hashes.
    message = purpose.encode() + b"\0" + data.encode("utf-8", "surrogatepass")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()
