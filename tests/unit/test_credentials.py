"""Passwords are stored as slow salted hashes, tokens as SHA-256, and both verify."""
from datetime import timedelta

import pytest

from tracker.accounts.store import AccountError, parse_duration
from tracker.accounts.credentials import hash_password, new_token, same_secret, token_hash, verify_password


def test_a_password_verifies_against_its_hash_and_nothing_else():
    stored = hash_password("correct horse battery staple")
    assert stored.startswith("scrypt$16384$8$1$")
    assert "correct horse" not in stored
    assert verify_password("correct horse battery staple", stored)
    assert not verify_password("correct horse battery stapl", stored)
    assert not verify_password("", stored)


def test_the_same_password_hashes_differently_each_time():
    assert hash_password("same") != hash_password("same")


@pytest.mark.parametrize("stored", ["", "plain", "scrypt$x$8$1$AA==$AA==", "bcrypt$1$2$3$4$5", "scrypt$16384$8$1$!$!"])
def test_a_malformed_stored_hash_never_verifies(stored):
    assert not verify_password("anything", stored)


def test_tokens_are_random_256_bits_and_stored_as_their_sha256():
    first, second = new_token(), new_token()
    assert first != second and len(first) >= 43  # 32 bytes in URL-safe base64
    assert token_hash(first) == token_hash(first) and len(token_hash(first)) == 32
    assert token_hash(first) != token_hash(second)


def test_a_shared_secret_matches_only_itself_and_never_when_empty():
    assert same_secret("s3cret", "s3cret")
    assert not same_secret("s3cre", "s3cret")
    assert not same_secret("", "")
    assert not same_secret(None, "s3cret")
    assert not same_secret("s3cret", "")


@pytest.mark.parametrize("text, expected", [
    (90, timedelta(seconds=90)), ("90", timedelta(seconds=90)), ("30m", timedelta(minutes=30)),
    ("12h", timedelta(hours=12)), ("30d", timedelta(days=30)), ("1.5h", timedelta(minutes=90)),
])
def test_durations(text, expected):
    assert parse_duration(text, longest=timedelta(days=30)) == expected


@pytest.mark.parametrize("text", ["", "soon", "-5m", "0", "31d", True, None, "12x"])
def test_bad_durations_say_why(text):
    with pytest.raises(AccountError):
        parse_duration(text, longest=timedelta(days=30))
