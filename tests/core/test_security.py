import pytest
from cryptography.fernet import Fernet

from app.core.security import SecretBox, hash_password, verify_password


def test_encryption_round_trip_hides_the_plaintext() -> None:
    box = SecretBox(Fernet.generate_key().decode())

    ciphertext = box.encrypt("wb-token-Привет")

    assert "wb-token" not in ciphertext
    assert box.decrypt(ciphertext) == "wb-token-Привет"
    assert box.encrypt("same") != box.encrypt("same")  # random IV per encryption


def test_a_passphrase_key_works_as_well_as_a_fernet_key() -> None:
    box = SecretBox("just a long passphrase from the environment")

    assert box.decrypt(box.encrypt("secret")) == "secret"


def test_key_rotation_keeps_old_ciphertexts_readable() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    stored = SecretBox(old).encrypt("token")

    rotated = SecretBox(f"{new},{old}")

    assert rotated.decrypt(stored) == "token"
    assert SecretBox(new).decrypt(rotated.encrypt("token")) == "token"


def test_the_wrong_key_cannot_decrypt() -> None:
    stored = SecretBox(Fernet.generate_key().decode()).encrypt("token")

    with pytest.raises(ValueError, match="SECRETS_KEY"):
        SecretBox(Fernet.generate_key().decode()).decrypt(stored)


def test_password_hash_verifies_only_the_right_password() -> None:
    hashed = hash_password("s3cret-pass")

    assert verify_password(hashed, "s3cret-pass")
    assert not verify_password(hashed, "s3cret-pasS")
    assert not verify_password(None, "s3cret-pass")
    assert not verify_password("not-a-hash", "s3cret-pass")
