"""Path guard: property-based and example checks that no path escapes its root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpproxy.errors import NotFound, PolicyDenied
from mcpproxy.policy.guards import check_path


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """base/root (the allowed root) with links pointing inside and out, and base/outside."""
    base = tmp_path_factory.mktemp("guards").resolve()
    root, outside = base / "root", base / "outside"
    (root / "a" / "b").mkdir(parents=True)
    outside.mkdir()
    (root / "a" / "b" / "f.txt").write_text("in")
    (outside / "secret.txt").write_text("out")
    (base / "root2").mkdir()
    links = {"link_in": "a", "link_out": "../outside", "link_abs": "/", "link_up": "..", "a/b/link_back": "../.."}
    for name, target in links.items():
        (root / name).symlink_to(target)
    return root


def test_paths_inside_the_root(tree: Path) -> None:
    assert check_path(str(tree / "a/b/f.txt"), roots=[tree]) == tree / "a/b/f.txt"
    assert check_path(str(tree), roots=[tree]) == tree
    assert check_path(str(tree / "a/../a/./b"), roots=[tree]) == tree / "a/b"
    assert check_path(str(tree / "link_in/b/f.txt"), roots=[tree], must_exist=True) == tree / "a/b/f.txt"
    assert check_path(str(tree / "link_in/new.txt"), roots=[tree]) == tree / "a/new.txt"  # not yet there


@pytest.mark.parametrize(
    "relative",
    [
        "..",
        "../outside/secret.txt",
        "a/../../outside",
        "link_out/secret.txt",
        "link_out/new.txt",
        "link_abs/etc/passwd",
        "link_up/outside",
        "a/b/link_back/../outside",
        "../root2/x",
        "link_up/root2",
    ],
)
def test_paths_escaping_the_root_are_refused(tree: Path, relative: str) -> None:
    with pytest.raises(PolicyDenied, match="outside the allowed directories"):
        check_path(str(tree / relative), roots=[tree])


def test_relative_paths_home_and_must_exist(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree / "a")
    monkeypatch.setenv("HOME", str(tree))
    assert check_path("b/f.txt", roots=[tree]) == tree / "a/b/f.txt"
    assert check_path("~/a", roots=[tree]) == tree / "a"
    with pytest.raises(PolicyDenied):
        check_path("../../outside", roots=[tree])
    with pytest.raises(PolicyDenied):
        check_path("~/../outside", roots=[tree])
    with pytest.raises(NotFound):
        check_path("missing.txt", roots=[tree], must_exist=True)
    with pytest.raises(PolicyDenied):  # no existence oracle outside the roots
        check_path(str(tree.parent / "outside/missing"), roots=[tree], must_exist=True)


def test_nul_bytes_loops_and_no_roots_are_refused(tree: Path, tmp_path: Path) -> None:
    with pytest.raises(PolicyDenied, match="NUL"):
        check_path(str(tree / "a\x00/../../etc"), roots=[tree])
    with pytest.raises(PolicyDenied):
        check_path(str(tree / "a"), roots=[])
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    with pytest.raises(PolicyDenied, match="cannot be resolved"):
        check_path(str(tmp_path / "loop1" / "x"), roots=[tmp_path])


def reference_resolve(path: str) -> str:
    """An independent resolver: follows symlinks component by component, missing parts literally."""
    parts: list[str] = []
    pending = path.split("/")[::-1]
    hops = 0
    while pending:
        name = pending.pop()
        if name in ("", "."):
            continue
        if name == "..":
            parts = parts[:-1]
            continue
        candidate = "/" + "/".join([*parts, name])
        if os.path.islink(candidate):
            hops += 1
            assert hops < 40
            target = os.readlink(candidate)
            parts = [] if target.startswith("/") else parts
            pending.extend(target.split("/")[::-1])
        else:
            parts.append(name)
    return "/" + "/".join(parts)


COMPONENTS = ["a", "b", "f.txt", "..", ".", "", "link_in", "link_out", "link_abs", "link_up", "link_back", "missing"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(COMPONENTS), max_size=8))
def test_random_paths_never_escape_and_inside_ones_are_allowed(tree: Path, components: list[str]) -> None:
    path = str(tree) + "/" + "/".join(components)
    expected = Path(reference_resolve(path))
    try:
        result = check_path(path, roots=[tree])
    except PolicyDenied:
        assert not expected.is_relative_to(tree)
    else:
        assert result.is_relative_to(tree)
        assert result == expected
