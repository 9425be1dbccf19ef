"""The cluster cookie and the CURVE keypair derived from it. Reads and creates
the cookie file (file I/O); key derivation itself is pure."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import zmq
import zmq.utils.z85

from hotmesh._errors import AuthError, CookieError
from hotmesh._files import make_temp
from hotmesh._hashes import sha256, token_urlsafe
from hotmesh._paths import default_cookie_file

log = logging.getLogger("hotmesh.mesh")

__all__ = [
    "COOKIE_ENV",
    "COOKIE_FILE_ENV",
    "cookie_fingerprint",
    "curve_keypair",
    "load_cookie",
    "require_curve",
]

COOKIE_ENV = "HOTMESH_COOKIE"
COOKIE_FILE_ENV = "HOTMESH_COOKIE_FILE"

# Domain separation: the same cookie must never give the same bytes to another
# use, and a later key scheme can change the label.
_KEY_LABEL = b"hotmesh-curve-v1\0"
# A cookie is a short secret; a bigger file is a mistake (wrong path).
_MAX_COOKIE_BYTES = 4096


def load_cookie(
    cookie: str | None = None,
    cookie_file: str | os.PathLike[str] | None = None,
    *,
    create: bool = True,
) -> str:
    """The cluster cookie, creating the cookie file on first use (``create``).

    Precedence: ``cookie`` > ``cookie_file`` > ``$HOTMESH_COOKIE`` >
    ``$HOTMESH_COOKIE_FILE`` > ``~/.hotmesh.cookie``: what the caller passes
    (an option, a command-line flag) beats the environment. Surrounding whitespace
    (the trailing newline of an edited file) is stripped.

    A missing file is created (nodes do this; clients pass ``create=False``
    and get a CookieError naming the file instead), parent directories too,
    with mode 0600 and a random secret. Creation is atomic and exclusive: the secret is written to a
    private temporary file, then hard-linked into place, so two nodes starting
    at once agree on one cookie and nobody ever reads a half-written file.

    Raises:
        CookieError: the cookie is empty; the file is readable or writable by
            group or others, owned by another user, not a regular file, too
            large, or unreadable. The message names the file and the fix.
    """
    if cookie is not None:
        return _checked(cookie, "the cookie option")
    if cookie_file is None:
        env = os.environ.get(COOKIE_ENV)
        if env is not None:
            return _checked(env, f"${COOKIE_ENV}")
    if cookie_file is not None:
        path, source = Path(cookie_file), "the cookie file option"
    elif os.environ.get(COOKIE_FILE_ENV):
        path, source = Path(os.environ[COOKIE_FILE_ENV]), f"${COOKIE_FILE_ENV}"
    else:
        path, source = default_cookie_file(), "the default location"
    path = path.expanduser()
    try:
        return _read(path)
    except FileNotFoundError:
        if not create:
            raise CookieError(_missing(path, source)) from None
    _create(path)
    log.info(
        "no cookie file %s (%s): made one with a new random secret (mode 600); "
        "only nodes and consoles holding that secret reach this node, so copy the "
        "cluster's cookie there instead if it should join an existing cluster",
        path,
        source,
    )
    return _read(path)


def _missing(path: Path, source: str) -> str:
    return (
        f"no cookie file {path} ({source}); clients never create one. Copy the cluster's "
        f"cookie there from a node's host (mode 600: chmod 600 {path}), or name the file "
        f"with --cookie-file or ${COOKIE_FILE_ENV}, or put the secret in ${COOKIE_ENV}"
    )


def _checked(value: str, source: str) -> str:
    cookie = value.strip()
    if not cookie:
        raise CookieError(f"the cluster cookie from {source} is empty")
    return cookie


def _read(path: Path) -> str:
    """Read the cookie file after checking that only its owner can use it."""
    try:
        # Symlinks are followed (Kubernetes mounts secrets through them); the
        # checks below apply to the file actually opened.
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise CookieError(f"cannot open cookie file {path}: {exc.strerror or exc}") from exc
    try:
        _check_permissions(path, os.fstat(fd))
        data = os.read(fd, _MAX_COOKIE_BYTES + 1)
    except OSError as exc:
        raise CookieError(f"cannot read cookie file {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    if len(data) > _MAX_COOKIE_BYTES:
        raise CookieError(
            f"cookie file {path} is larger than {_MAX_COOKIE_BYTES} bytes: is it the right file?"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CookieError(f"cookie file {path} is not UTF-8 text") from exc
    return _checked(text, f"cookie file {path}")


def _check_permissions(path: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise CookieError(f"cookie file {path} is not a regular file")
    if os.name != "posix":
        return
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise CookieError(
            f"cookie file {path} has mode {mode:04o}: it is accessible by group or others "
            f"and is refused, as ssh refuses such keys. Fix: chmod 600 {path}"
        )
    if info.st_uid != os.geteuid():
        raise CookieError(
            f"cookie file {path} is owned by uid {info.st_uid}, not by this user "
            f"(uid {os.geteuid()}). Fix: give this user its own copy with mode 600"
        )


def _create(path: Path) -> None:
    """Create ``path`` holding a fresh secret unless another process wins the race."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = make_temp(path.parent, ".hotmesh-cookie-")
    except OSError as exc:
        raise CookieError(f"cannot create cookie file {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), 0o600)
            file.write(token_urlsafe(32) + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first: its secret is the cookie
        except OSError:
            # Filesystems without hard links: fall back to an exclusive create.
            _create_exclusive(path, Path(tmp).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CookieError(f"cannot create cookie file {path}: {exc.strerror or exc}") from exc
    finally:
        Path(tmp).unlink(missing_ok=True)


def _create_exclusive(path: Path, content: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(content)
        file.flush()
        os.fsync(file.fileno())


def curve_keypair(cookie: str) -> tuple[bytes, bytes]:
    """The CURVE keypair of a cluster: ``(public_z85, secret_z85)``.

    Deterministic: every node and client holding the same cookie derives the
    same pair. The secret key is ``sha256(b"hotmesh-curve-v1\\0" + cookie)``;
    the public key is computed from it by libzmq.

    Raises:
        CookieError: the cookie is empty.
        AuthError: this libzmq has no CURVE support (see :func:`require_curve`).
    """
    cookie = _checked(cookie, "the argument")
    require_curve()
    secret_raw = sha256(_KEY_LABEL + cookie.encode("utf-8")).digest()
    secret = zmq.utils.z85.encode(secret_raw)
    return zmq.curve_public(secret), secret


def cookie_fingerprint(cookie: str) -> str:
    """A short id of the cookie, safe for logs: 8 hex digits of sha256 of the
    cluster's z85 public key (not reversible to the cookie)."""
    public, _ = curve_keypair(cookie)
    return sha256(public).hexdigest()[:8]


def require_curve() -> None:
    """Check that this pyzmq/libzmq can do CURVE.

    Raises:
        AuthError: CURVE is missing, with how to get a build that has it.
    """
    if not zmq.has("curve"):
        raise AuthError(
            f"this pyzmq (libzmq {zmq.zmq_version()}) was built without CURVE "
            "(libsodium), and hotmesh authenticates and encrypts every connection "
            "with CURVE. Install pyzmq from a PyPI wheel, which bundles libzmq with "
            "libsodium: pip install --force-reinstall --only-binary=:all: pyzmq. Conda's "
            "zeromq and system libzmq packages built without libsodium lack it."
        )
