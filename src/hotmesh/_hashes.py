"""Hashes and random tokens without OpenSSL (no I/O).

``hashlib`` and ``secrets`` load OpenSSL's libcrypto when imported, whatever
is asked of them: about 3.4 MB of every node's resident memory and 2 ms of
its start, for hashes of a few hundred bytes (cookies, sources, member
lists). Python's own sha256, sha1 and blake2b give the same digests; a Python
built without them falls back to ``hashlib``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hashlib import blake2b, sha1, sha256
else:
    try:  # Python 3.12 and later
        from _sha2 import sha256
    except ImportError:
        try:  # Python 3.11
            from _sha256 import sha256
        except ImportError:
            from hashlib import sha256
    try:
        from _sha1 import sha1
    except ImportError:
        from hashlib import sha1
    try:
        from _blake2 import blake2b
    except ImportError:
        from hashlib import blake2b

__all__ = ["blake2b", "sha1", "sha256", "token_hex", "token_urlsafe"]


def token_hex(nbytes: int) -> str:
    """``nbytes`` random bytes as hex, like ``secrets.token_hex``."""
    return os.urandom(nbytes).hex()


def token_urlsafe(nbytes: int) -> str:
    """``nbytes`` random bytes in URL-safe base64, like ``secrets.token_urlsafe``."""
    import base64  # only for a new cookie file

    return base64.urlsafe_b64encode(os.urandom(nbytes)).rstrip(b"=").decode("ascii")
