"""Password hashing (argon2), access tokens (JWT), API tokens and secret encryption (Fernet)."""

import base64
import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import TypeAdapter

from app.core.schemas import Id

JWT_ALGORITHM = "HS256"
API_TOKEN_PREFIX = "sd_"  # noqa: S105 - a prefix, not a secret

_hasher = PasswordHasher()
# Verifying against this keeps unknown-email logins as slow as wrong-password ones.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def create_access_token(secret: str, *, user_id: int, seller_id: int, ttl: timedelta) -> str:
    now = datetime.now(UTC)
    claims = {"sub": str(user_id), "sid": seller_id, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM)


# A signed token is still input: its ids must be ids (a forged or buggy one is refused, not
# sent to the database).
_SUBJECT = TypeAdapter(tuple[Id, Id])


def decode_access_token(secret: str, token: str) -> tuple[int, int] | None:
    """(user_id, seller_id) of a valid, unexpired token; None otherwise."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=[JWT_ALGORITHM], options={"require": ["sub", "sid", "exp"]}
        )
        subject = _SUBJECT.validate_python((claims["sub"], claims["sid"]))
    except (jwt.PyJWTError, ValueError):  # a pydantic ValidationError is a ValueError
        return None
    return subject


def new_api_token() -> str:
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def api_token_digest(token: str) -> str:
    """API tokens are stored only as their SHA-256; they are random, so no salt is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def _fernet_key(raw: str) -> bytes:
    try:
        Fernet(raw.encode())
        return raw.encode()
    except ValueError:
        return base64.urlsafe_b64encode(hashlib.sha256(raw.encode()).digest())


@lru_cache(maxsize=8)
def _cipher(keys: str) -> MultiFernet:
    return MultiFernet([Fernet(_fernet_key(k.strip())) for k in keys.split(",") if k.strip()])


class SecretBox:
    """Encrypts marketplace tokens at rest. The first key encrypts; every key decrypts."""

    def __init__(self, keys: str) -> None:
        if not keys.strip():
            raise ValueError("SECRETS_KEY is empty")
        self._cipher = _cipher(keys)

    def encrypt(self, plaintext: str) -> str:
        return self._cipher.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._cipher.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("secret cannot be decrypted with the configured SECRETS_KEY") from exc
