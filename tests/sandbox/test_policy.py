"""The policy value, exit explanations, backend choice and the launch spec (no processes)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from mcpproxy.errors import ConfigError, UpstreamUnavailable
from mcpproxy.sandbox import auto
from mcpproxy.sandbox.base import (
    Availability,
    SandboxPolicy,
    SandboxPolicyError,
    SandboxUnavailable,
    exit_signal,
    explain_exit,
    human_bytes,
)
from mcpproxy.sandbox.bwrap import BubblewrapSandbox
from mcpproxy.sandbox.docker import DockerSandbox
from mcpproxy.sandbox.landlock import LandlockSandbox
from mcpproxy.sandbox.none import NoSandbox


def test_policy_validates_paths_domains_limits_and_env() -> None:
    with pytest.raises(SandboxPolicyError, match="absolute"):
        SandboxPolicy(writable_paths=("relative/dir",))
    with pytest.raises(SandboxPolicyError, match="allowed domain"):
        SandboxPolicy(allowed_domains=("Example.COM/path",))
    with pytest.raises(SandboxPolicyError, match="positive"):
        SandboxPolicy(cpu_seconds=0)
    with pytest.raises(SandboxPolicyError, match="environment variable"):
        SandboxPolicy(env={"BAD-NAME": "x"})
    with pytest.raises(SandboxPolicyError, match="network"):
        SandboxPolicy(network="wide-open")  # type: ignore[arg-type]
    ok = SandboxPolicy(allowed_domains=("example.com", "*.example.org", "10.0.0.1", "::1"))
    assert ok.allowed_domains[1] == "*.example.org"


def test_policy_errors_fit_the_error_tree() -> None:
    assert issubclass(SandboxPolicyError, ConfigError)
    assert issubclass(SandboxUnavailable, UpstreamUnavailable)
    err = SandboxPolicyError("bad", key="network")
    assert err.to_dict()["error"] == "sandbox_policy_error"
    assert err.to_dict()["data"] == {"key": "network"}


def test_policy_round_trips_and_filters_env() -> None:
    policy = SandboxPolicy(
        network="allow",
        allowed_domains=("api.example.com",),
        writable_paths=("/srv/work",),
        env={"API_KEY": "k"},
        env_allowlist=("LANG",),
        home_dir="/srv/home",
        tmp_dir="/srv/tmp",
    )
    assert SandboxPolicy.from_dict(json.loads(policy.to_json())) == policy
    env = policy.final_env({"LANG": "C", "AWS_SECRET_ACCESS_KEY": "s", "PATH": "/x"})
    assert env == {"LANG": "C", "API_KEY": "k", "HOME": "/srv/home", "TMPDIR": "/srv/tmp"}
    with pytest.raises(SandboxPolicyError, match="unknown sandbox policy keys"):
        SandboxPolicy.from_dict({"netwrok": "none"})


def test_exit_signal_reads_both_conventions() -> None:
    assert exit_signal(-signal.SIGXCPU) == signal.SIGXCPU
    assert exit_signal(128 + signal.SIGKILL) == signal.SIGKILL
    assert exit_signal(1) is None
    assert exit_signal(None) is None
    assert human_bytes(256 * 1024 * 1024) == "256 MiB"
    assert human_bytes(1000) == "1000 bytes"


LIMITED = SandboxPolicy(cpu_seconds=2, memory_bytes=512 * 1024 * 1024, max_processes=16, max_open_files=64,
                        max_file_bytes=1024 * 1024)  # fmt: skip


@pytest.mark.parametrize(
    ("returncode", "stderr", "expected"),
    [
        (-signal.SIGXCPU, "", "killed: CPU time limit (2 s) exceeded"),
        (128 + signal.SIGXCPU, "", "killed: CPU time limit (2 s) exceeded"),
        (-signal.SIGXFSZ, "", "killed: file size limit (1 MiB) exceeded"),
        (-signal.SIGSYS, "", "killed: a system call the sandbox forbids (seccomp)"),
        (1, "Traceback...\nMemoryError\n", "stopped: memory limit (512 MiB) exceeded: MemoryError"),
        (-signal.SIGKILL, "", "killed (SIGKILL): probably the memory limit (512 MiB) or the CPU hard limit (3 s)"),
        (1, "BlockingIOError: [Errno 11] Resource temporarily unavailable", "process limit (16) reached"),
        (1, "OSError: [Errno 24] Too many open files", "open-file limit (64) reached"),
        (1, "PermissionError: [Errno 13] Permission denied: '/x'", "denied by sandbox: PermissionError"),
        (1, "PermissionError: [Errno 1] Operation not permitted", "denied by sandbox: PermissionError"),
        (1, "ConnectionRefusedError: [Errno 111] Connection refused", "network is disabled (network=none)"),
        (1, "FileNotFoundError: [Errno 2] No such file or directory: '/h/.ssh/x'", "not found inside the sandbox"),
        (1, "bwrap: Can't find source path /nope: No such file or directory", "sandbox failed to start: bwrap:"),
        (1, "mcpproxy sandbox: egress denied: x.test:80 (not listed)", "denied by sandbox: mcpproxy"),
    ],
)
def test_explain_exit(returncode: int, stderr: str, expected: str) -> None:
    explanation = explain_exit(LIMITED, returncode, stderr, backend="bwrap")
    assert explanation is not None
    assert expected in explanation


def test_explain_exit_stays_quiet_when_nothing_points_at_the_sandbox() -> None:
    assert explain_exit(LIMITED, 0, "Permission denied") is None
    assert explain_exit(LIMITED, 3, "ValueError: boom") is None
    assert explain_exit(SandboxPolicy(cpu_seconds=None), -signal.SIGXCPU, "", backend="bwrap") == "killed by SIGXCPU"
    # Unsandboxed, a denial is the host's doing, not ours; only the signal is named.
    assert explain_exit(LIMITED, 1, "Permission denied", backend="none") is None
    assert explain_exit(LIMITED, -signal.SIGXCPU, "", backend="none") == "killed by SIGXCPU"


def test_select_sandbox_prefers_the_strongest_and_reports_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BubblewrapSandbox, "available", lambda self: Availability(False, "no bwrap"))
    monkeypatch.setattr(LandlockSandbox, "available", lambda self: Availability(True, "landlock ok"))
    selection = auto.select_sandbox("auto")
    assert selection.sandbox.name == "landlock"
    assert selection.skipped == {"bwrap": "no bwrap"}


def test_select_sandbox_never_falls_to_none_when_isolation_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    for cls in (BubblewrapSandbox, LandlockSandbox, DockerSandbox):
        monkeypatch.setattr(cls, "available", lambda self: Availability(False, "missing"))
    assert auto.select_sandbox("auto").sandbox.name == "none"
    with pytest.raises(SandboxUnavailable, match="no isolating sandbox"):
        auto.select_sandbox("auto", require_isolation=True)
    with pytest.raises(SandboxUnavailable, match="'bwrap' is unavailable"):
        auto.select_sandbox("bwrap")
    with pytest.raises(SandboxPolicyError, match="unknown sandbox"):
        auto.select_sandbox("chroot")


def test_this_machine_has_both_local_backends() -> None:
    """The test machine installs bubblewrap, libseccomp and pyseccomp (scripts/install-sandbox-deps.sh)."""
    assert BubblewrapSandbox().available().ok, BubblewrapSandbox().available().reason
    assert LandlockSandbox().available().ok, LandlockSandbox().available().reason
    assert auto.select_sandbox("auto").sandbox.name == "bwrap"
    assert NoSandbox().available().ok


def test_launch_spec_carries_no_environment_values(tmp_path: Path) -> None:
    policy = SandboxPolicy(env={"API_KEY": "sk-secret-value"}, working_dir=str(tmp_path))
    for sandbox in (BubblewrapSandbox(), LandlockSandbox()):
        prepared = sandbox.prepare(["server"], {"LANG": "C"}, policy)
        assert not any("sk-secret-value" in arg for arg in prepared.argv)
        assert prepared.env["API_KEY"] == "sk-secret-value"
        spec = json.loads(next(a for a in prepared.argv if a.startswith("{")))
        assert spec["env_keys"] == ["API_KEY", "LANG"]


def test_bwrap_command_line_shape(tmp_path: Path) -> None:
    work, code = tmp_path / "work", tmp_path / "work" / "vendored"
    code.mkdir(parents=True)
    policy = SandboxPolicy(writable_paths=(str(work),), readonly_paths=(str(code),), working_dir=str(work))
    argv = list(BubblewrapSandbox().prepare(["node", "index.js"], {}, policy).argv)
    joined = " ".join(argv)
    # Parents first: the read-only directory inside the writable one stays read-only.
    assert joined.index(f"--bind {work} {work}") < joined.index(f"--ro-bind-try {code} {code}")
    for flag in ("--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--cap-drop ALL"):
        assert flag in joined
    assert "--share-net" not in argv
    assert "--ro-bind /etc /etc" not in joined  # /etc is curated, never bound whole
    assert argv[-3:] == ["--", "node", "index.js"]
    host_net = BubblewrapSandbox().prepare(["x"], {}, SandboxPolicy(network="host"))
    assert "--share-net" in host_net.argv
    with pytest.raises(SandboxPolicyError, match="egress proxy"):
        BubblewrapSandbox().prepare(["x"], {}, SandboxPolicy(network="allow", allowed_domains=("a.example",)))
    with pytest.raises(SandboxPolicyError, match="empty"):
        BubblewrapSandbox().prepare([], {}, SandboxPolicy())
