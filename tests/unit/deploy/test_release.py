"""Release manifests and version strings."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotmesh import DeployError
from hotmesh.deploy.release import (
    fingerprint,
    matches,
    parse_manifest,
    read_manifest,
    release_of,
    version_string,
)

GOOD = """
version = "v2"
packages = ["shop", "shop_extra"]

[[actions]]
id = "2026-11-24-migrate-counters"
call = "shop.upgrade:migrate_counters"
"""


def test_manifest_with_actions_parses() -> None:
    manifest = parse_manifest(GOOD)
    assert manifest.version == "v2"
    assert manifest.packages == ("shop", "shop_extra")
    assert [(a.id, a.call) for a in manifest.actions] == [
        ("2026-11-24-migrate-counters", "shop.upgrade:migrate_counters")
    ]


def test_an_action_may_set_settings_with_or_without_a_call() -> None:
    text = (
        'version = "v2"\n[[actions]]\nid = "limits"\nsettings = { "cart.max_items" = 50 }\n'
        '[[actions]]\nid = "both"\ncall = "m:f"\nsettings = { flag = true }\n'
    )
    limits, both = parse_manifest(text).actions
    assert (limits.call, dict(limits.settings)) == (None, {"cart.max_items": 50})
    assert (both.call, dict(both.settings)) == ("m:f", {"flag": True})


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("version = ", "TOML"),
        ("packages = []", "version"),
        ('version = "v1+x"', "version"),
        ('version = "v1"\npackages = "shop"', "packages"),
        ('version = "v1"\npackages = ["not-a-package"]', "packages"),
        ('version = "v1"\n[[actions]]\nid = "a b"\ncall = "m:f"', "action id"),
        ('version = "v1"\n[[actions]]\nid = "a"\ncall = "m.f"', "call"),
        ('version = "v1"\nextra = 1', "unknown keys"),
        ('version = "v1"\n[[actions]]\nid = "a"', "give it a 'call', 'settings' or both"),
        ('version = "v1"\n[[actions]]\nid = "a"\ncall = "m:f"\nrun = 1', "unknown keys"),
        ('version = "v1"\n[[actions]]\nid = "a"\nsettings = 3', "table"),
        ('version = "v1"\n[[actions]]\nid = "a"\nsettings = { at = 2026-11-24 }', "JSON"),
    ],
)
def test_bad_manifest_is_refused_naming_the_problem(text: str, names: str) -> None:
    with pytest.raises(DeployError, match=names):
        parse_manifest(text)


def test_missing_manifest_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match=r"hotmesh-release\.toml"):
        read_manifest(tmp_path)


def test_manifest_is_read_through_a_switched_symlink(tmp_path: Path) -> None:
    for vsn in ("v1", "v2"):
        (tmp_path / vsn).mkdir()
        (tmp_path / vsn / "hotmesh-release.toml").write_text(f'version = "{vsn}"\n')
    current = tmp_path / "current"
    current.symlink_to(tmp_path / "v1")
    assert read_manifest(current).version == "v1"
    current.unlink()
    current.symlink_to(tmp_path / "v2")
    assert read_manifest(current).version == "v2"


def test_fingerprint_ignores_order_and_follows_content() -> None:
    a = {"shop.a": "11", "shop.b": "22"}
    assert fingerprint(a) == fingerprint(dict(reversed(a.items())))
    assert fingerprint(a) != fingerprint({"shop.a": "11", "shop.b": "23"})
    assert fingerprint(a) != fingerprint({"shop.a": "11"})
    assert len(fingerprint(a)) == 8


def test_fingerprint_asked_again_follows_every_change_of_code_or_actions() -> None:
    hashes = {f"shop.m{i}": f"{i:064x}" for i in range(300)}
    first = fingerprint(hashes, ["a"])
    assert fingerprint(dict(hashes), ["a"]) == first  # equal content, same answer
    hashes["shop.m7"] = "f" * 64  # changed in place, as a caller's dict may be
    changed = fingerprint(hashes, ["a"])
    assert changed != first
    assert fingerprint(hashes, ["a", "b"]) not in (first, changed)
    assert fingerprint(hashes, ("a",)) == changed
    del hashes["shop.m7"]
    assert fingerprint(hashes, ["a"]) not in (first, changed)


def test_fingerprint_is_stable_across_runs() -> None:
    assert fingerprint({"m": "h"}) == "cb5b2387"


def test_version_string_and_matching() -> None:
    version = version_string("v2", {"m": "h"})
    assert version == "v2+cb5b2387"
    assert release_of(version) == "v2"
    assert matches(version, "v2")
    assert matches(version, "v2+cb5b2387")
    assert not matches(version, "v2+00000000")
    assert not matches(version, "v1")
    assert version_string(None, {}).startswith("unreleased+")
