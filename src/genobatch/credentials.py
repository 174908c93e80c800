"""Access keys that clients sign their requests with.

The server keeps its keys in ``<data_dir>/credentials.json`` (mode 0600). The first start generates a
primary key pair that looks like an AWS one, so that boto3, the AWS CLI and every other SDK accept it
unchanged; later starts load it. More pairs can be added with :meth:`KeyStore.add` (persisted) or
handed in through ``GENOBATCH_EXTRA_KEYS="AKID1:SECRET1,AKID2:SECRET2"`` (read at load time, never
written to disk, so that secrets managed elsewhere do not leak into the data directory).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import stat
import string
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CREDENTIALS_FILE = "credentials.json"
EXTRA_KEYS_ENV = "GENOBATCH_EXTRA_KEYS"
FILE_VERSION = 1

# AWS access key ids are 20 upper-case alphanumerics with a 4-letter prefix saying what kind of key it
# is (AKIA, ASIA, ...). "GBIA" keeps that shape, which some tools check, while making it obvious that
# the key belongs to genobatch and not to a real AWS account.
ACCESS_KEY_PREFIX = "GBIA"
ACCESS_KEY_LENGTH = 20
SECRET_KEY_LENGTH = 40
_ACCESS_KEY_ALPHABET = string.ascii_uppercase + string.digits
# Same alphabet as AWS secrets (base64), so any client-side validation of the secret's shape passes.
_SECRET_KEY_ALPHABET = string.ascii_letters + string.digits + "+/"


@dataclass(frozen=True)
class KeyPair:
    """One access key id and its secret."""

    access_key_id: str
    # repr=False: a KeyPair ending up in a log line or a traceback must not reveal the secret.
    secret_access_key: str = field(repr=False)
    description: str = ""


def generate_key_pair(description: str = "") -> KeyPair:
    """A fresh random key pair, from the ``secrets`` module's CSPRNG."""
    suffix_len = ACCESS_KEY_LENGTH - len(ACCESS_KEY_PREFIX)
    access_key_id = ACCESS_KEY_PREFIX + "".join(secrets.choice(_ACCESS_KEY_ALPHABET) for _ in range(suffix_len))
    secret = "".join(secrets.choice(_SECRET_KEY_ALPHABET) for _ in range(SECRET_KEY_LENGTH))
    return KeyPair(access_key_id, secret, description)


def parse_extra_keys(value: str) -> list[KeyPair]:
    """Parse ``"AKID1:SECRET1,AKID2:SECRET2"`` (the format of ``GENOBATCH_EXTRA_KEYS``).

    Blank entries are skipped, so a trailing comma is harmless. Raises ``ValueError`` naming the
    variable on a malformed entry (without echoing the secret).
    """
    pairs: list[KeyPair] = []
    for index, entry in enumerate(value.split(","), start=1):
        entry = entry.strip()
        if not entry:
            continue
        akid, sep, secret = entry.partition(":")
        akid, secret = akid.strip(), secret.strip()
        if not sep or not akid or not secret:
            raise ValueError(
                f"{EXTRA_KEYS_ENV}: entry {index} must look like ACCESS_KEY_ID:SECRET_ACCESS_KEY "
                f"(entries separated by commas)"
            )
        pairs.append(KeyPair(akid, secret, f"from {EXTRA_KEYS_ENV}"))
    return pairs


class KeyStore:
    """The key pairs the server accepts: the persisted ones plus those from the environment."""

    def __init__(self, path: Path, persisted: list[KeyPair], extra: list[KeyPair] | None = None) -> None:
        if not persisted:
            raise ValueError(f"{path}: a key store needs at least one persisted key pair")
        self._path = path
        self._persisted = list(persisted)
        self._extra = list(extra or [])
        # add() may be called from request-handling threads while others call secret_for().
        self._lock = threading.Lock()
        self._index = self._build_index()

    # ---------------------------------------------------------------- construction

    @classmethod
    def load_or_create(cls, data_dir: Path) -> KeyStore:
        """Load ``data_dir/credentials.json``, generating it with a primary key pair if absent.

        Also reads extra pairs from ``GENOBATCH_EXTRA_KEYS``. Raises ``ValueError`` naming the file if it
        exists but cannot be understood: silently replacing it would lock out every configured client.
        """
        data_dir = Path(data_dir).expanduser()
        path = data_dir / CREDENTIALS_FILE
        extra = parse_extra_keys(os.environ.get(EXTRA_KEYS_ENV, ""))
        if not path.exists():
            # 0700: the directory also holds job logs and the database, none of which others should read.
            data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            primary = generate_key_pair("primary")
            created = _write_new(path, _serialize([primary]))
            if created:
                log.info("generated primary access key %s in %s", primary.access_key_id, path)
                return cls(path, [primary], extra)
            # Another process created the file between our check and our write: use its keys.
        return cls(path, _read(path), extra)

    # ---------------------------------------------------------------- queries

    @property
    def path(self) -> Path:
        """The credentials file."""
        return self._path

    @property
    def primary(self) -> KeyPair:
        """The key pair generated on first start, handed to the CLI and to users."""
        return self._persisted[0]

    def keys(self) -> list[KeyPair]:
        """Every accepted key pair: persisted ones first (primary first), then those from the env."""
        with self._lock:
            return [*self._persisted, *self._extra]

    def secret_for(self, access_key_id: str) -> str | None:
        """The secret of ``access_key_id``, or None if the key is unknown."""
        pair = self._index.get(access_key_id)
        return pair.secret_access_key if pair else None

    # ---------------------------------------------------------------- changes

    def add(self, description: str = "") -> KeyPair:
        """Generate a new key pair, persist it, and start accepting it."""
        with self._lock:
            # Re-read the file so that a pair added by another process since we loaded is not lost.
            persisted = _read(self._path) if self._path.exists() else list(self._persisted)
            pair = generate_key_pair(description)
            persisted.append(pair)
            _write_replace(self._path, _serialize(persisted))
            self._persisted = persisted
            self._index = self._build_index()
        log.info("added access key %s (%s)", pair.access_key_id, description or "no description")
        return pair

    # ---------------------------------------------------------------- internals

    def _build_index(self) -> dict[str, KeyPair]:
        index: dict[str, KeyPair] = {}
        # Extra keys first, then persisted ones, so the file wins if an id appears in both; a conflicting
        # secret is an operator mistake worth stopping on rather than guessing which one is meant.
        for pair in [*self._extra, *self._persisted]:
            known = index.get(pair.access_key_id)
            if known is not None and known.secret_access_key != pair.secret_access_key:
                raise ValueError(
                    f"access key {pair.access_key_id} is configured twice with different secrets "
                    f"({self._path} and {EXTRA_KEYS_ENV})"
                )
            index[pair.access_key_id] = pair
        return index


# -------------------------------------------------------------------- file format


def _serialize(pairs: list[KeyPair]) -> bytes:
    doc = {
        "version": FILE_VERSION,
        "keys": [
            {
                "access_key_id": p.access_key_id,
                "secret_access_key": p.secret_access_key,
                "description": p.description,
            }
            for p in pairs
        ],
    }
    return (json.dumps(doc, indent=2) + "\n").encode()


def _read(path: Path) -> list[KeyPair]:
    """Parse the credentials file; ``ValueError`` naming the file on anything unexpected."""
    _warn_if_readable_by_others(path)
    try:
        doc: Any = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: corrupt credentials file (not valid JSON: {exc}); fix or remove it") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list) or not doc["keys"]:
        raise ValueError(f"{path}: corrupt credentials file (expected an object with a non-empty 'keys' list)")
    if doc.get("version", FILE_VERSION) != FILE_VERSION:
        raise ValueError(f"{path}: unsupported credentials file version {doc.get('version')!r}")
    pairs: list[KeyPair] = []
    for i, entry in enumerate(doc["keys"]):
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: corrupt credentials file (keys[{i}] is not an object)")
        akid, secret = entry.get("access_key_id"), entry.get("secret_access_key")
        description = entry.get("description", "")
        if not (isinstance(akid, str) and akid and isinstance(secret, str) and secret):
            raise ValueError(
                f"{path}: corrupt credentials file (keys[{i}] needs string 'access_key_id' and 'secret_access_key')"
            )
        pairs.append(KeyPair(akid, secret, description if isinstance(description, str) else ""))
    return pairs


def _warn_if_readable_by_others(path: Path) -> None:
    with contextlib.suppress(OSError):
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("%s has mode %o; it holds secrets and should be 0600", path, mode)


def _write_tmp(path: Path, data: bytes) -> Path:
    """Write ``data`` to a fresh 0600 temporary file next to ``path`` and flush it to disk."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # O_EXCL + mode at creation: the secret is never readable by others, not even for an instant.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform lets a directory be opened, hence suppress.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_new(path: Path, data: bytes) -> bool:
    """Atomically create ``path`` with ``data`` unless it exists. True if this call created it.

    A hard link of the finished temporary file is an atomic create-if-absent: two servers starting at
    once on the same data directory cannot each write a different primary key and leave clients
    holding the loser's.
    """
    tmp = _write_tmp(path, data)
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:
            # Filesystems without hard links: fall back to rename, which is atomic but not exclusive.
            os.replace(tmp, path)
        _fsync_dir(path.parent)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _write_replace(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data`` (temporary file + rename)."""
    tmp = _write_tmp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
