"""Issue 8 item 5: the pseudonym key has no built-in default beyond loopback, comes from a
file of versions (`v<N>=<secret>`, the highest current), and its errors never quote a
secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from overgang.config import Settings
from pathway.domain.national_id import validate_national_id, with_check_digits
from pathway.domain.pseudonym import DEV_KEY, PseudonymKeyError, PseudonymKeys, load_keys

SECRET = "s3cret-s3cret-s3cret"
NID = validate_national_id(next(filter(None, map(with_check_digits, ("010190100", "010190101")))))


def settings(tmp_path: Path, key_file: str | None = None, key: str = DEV_KEY) -> Settings:
    path = ""
    if key_file is not None:
        target = tmp_path / "pseudonym.keys"
        target.write_text(key_file)
        target.chmod(0o600)
        path = str(target)
    return Settings(pseudonym_key=key, pseudonym_key_file=path)


def test_a_loopback_bind_without_a_key_runs_on_the_dev_key(tmp_path: Path) -> None:
    keys = load_keys(settings(tmp_path), "127.0.0.1:50051")
    assert keys.pseudonym(NID) == PseudonymKeys.single(DEV_KEY).pseudonym(NID)


@pytest.mark.parametrize("address", ["0.0.0.0:50051", "10.0.0.5:50051", "[::]:50051"])
def test_a_bind_beyond_loopback_without_a_key_refuses_to_start(
    tmp_path: Path, address: str
) -> None:
    with pytest.raises(PseudonymKeyError, match="OVERGANG_PSEUDONYM_KEY_FILE"):
        load_keys(settings(tmp_path), address)


def test_insecure_dev_does_not_make_the_dev_key_acceptable_beyond_loopback(
    tmp_path: Path,
) -> None:
    with pytest.raises(PseudonymKeyError):
        load_keys(Settings(pseudonym_key=DEV_KEY, insecure_dev=True), "0.0.0.0:50051")


@pytest.mark.parametrize("current", ["v2=short", f"v2={DEV_KEY}"])
def test_a_weak_current_key_is_refused_beyond_loopback(tmp_path: Path, current: str) -> None:
    with pytest.raises(PseudonymKeyError, match="v2"):
        load_keys(settings(tmp_path, f"v1={SECRET}\n{current}\n"), "0.0.0.0:50051")


def test_the_highest_version_of_the_file_is_current(tmp_path: Path) -> None:
    text = f"# rotated 2026-11\nv1={SECRET}\n\nv3=third-{SECRET}\nv2=second-{SECRET}\n"
    keys = load_keys(settings(tmp_path, text), "0.0.0.0:50051")
    assert (keys.current_version, sorted(keys.all_pseudonyms(NID))) == (3, [1, 2, 3])
    assert keys.pseudonym(NID) == PseudonymKeys.single(f"third-{SECRET}").pseudonym(NID)


def test_the_file_and_the_variable_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PseudonymKeyError, match="not both"):
        load_keys(settings(tmp_path, f"v1={SECRET}", key=SECRET), "127.0.0.1:1")


def test_the_variable_alone_is_version_1(tmp_path: Path) -> None:
    keys = load_keys(settings(tmp_path, key=SECRET), "0.0.0.0:50051")
    assert (keys.current_version, keys.pseudonym(NID)) == (
        1,
        PseudonymKeys.single(SECRET).pseudonym(NID),
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (f"{SECRET}\n", "line 1: write v<N>=<secret>"),
        (f"v1={SECRET}\nv1=other-{SECRET}\n", "line 2: v1 is given twice"),
        (f"v0={SECRET}\n", "line 1: write v<N>=<secret>"),
        ("v1=\n", "line 1: write v<N>=<secret>"),
        ("# nothing\n", "holds no v<N>=<secret> line"),
    ],
)
def test_a_malformed_key_file_names_the_line_never_the_secret(
    tmp_path: Path, text: str, reason: str
) -> None:
    with pytest.raises(PseudonymKeyError) as refused:
        load_keys(settings(tmp_path, text), "127.0.0.1:1")
    assert reason in str(refused.value)
    assert SECRET not in str(refused.value)


def test_a_missing_key_file_is_refused(tmp_path: Path) -> None:
    missing = Settings(pseudonym_key_file=str(tmp_path / "nope"))
    with pytest.raises(PseudonymKeyError, match="cannot read"):
        load_keys(missing, "127.0.0.1:1")


def test_keys_never_print_their_secrets() -> None:
    keys = PseudonymKeys.parse(f"v1={SECRET}")
    assert SECRET not in repr(keys) + str(keys)
