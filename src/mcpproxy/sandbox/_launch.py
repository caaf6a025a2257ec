"""The in-sandbox launcher: apply limits, drop privileges, confine, then exec the server.

Usage: ``python -m mcpproxy.sandbox._launch <json-spec> -- argv...``. The backends run the same
``main`` through a one-line bootstrap (``python -I -S -B -c "...import _launch..."``) so the
interpreter skips ``site`` and uses cached bytecode; bubblewrap binds this one file (and
its bytecode) read-only into the sandbox.

Design. This file is deliberately self-contained: only the standard library and, for
seccomp, the optional ``pyseccomp`` module (put on ``sys.path`` by the bootstrap, so the
interpreter can start with ``-I -S``, which keeps the launch cheap). It runs in one of two
places:

* inside bubblewrap, where the mount, PID, network and user namespaces already exist; the
  launcher keeps ``CAP_SYS_ADMIN``/``CAP_SETPCAP`` just long enough to cap the PID
  namespace's ``pid_max`` (the only process bound that holds when the gateway runs as root:
  the kernel exempts real uid 0 from ``RLIMIT_NPROC``), then drops every capability;
* directly on the host (the ``landlock`` backend), where it first tries to create a PID
  namespace of its own for the same reason (and so the whole tree dies together), then
  applies Landlock file-system, TCP-port and scope rules.

The order is fixed: PID namespace and its cap, rlimits, capability drop, ``no_new_privs``, Landlock, seccomp,
optional egress forwarder, ``execve`` with exactly the environment keys the spec lists
(values come from the launcher's own environment, never from the command line, so secrets
do not appear in ``/proc/PID/cmdline``). Any failure to apply a *required* restriction
stops the launch (exit 126): the launcher fails closed.

The egress forwarder is a tiny relay: in bubblewrap's private network namespace it listens
on ``127.0.0.1:PORT`` and copies bytes to the egress proxy's Unix socket, which is
bind-mounted in. It is a child of the server process and dies with it (``PDEATHSIG``).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

EXIT_SETUP_FAILED = 126
EXIT_NOT_FOUND = 127

_libc = ctypes.CDLL(None, use_errno=True)

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
# NOROOT, NO_SETUID_FIXUP, KEEP_CAPS locked, NO_CAP_AMBIENT_RAISE, each with its lock bit.
SECUREBITS_LOCKED_DOWN = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 0x4000, 0x40000

# The kernel hands out PIDs from 300 after the first wrap, so a namespace's pid_max must
# sit above that for the limit to mean "this many processes at once".
PID_RESERVED = 300

LANDLOCK_CREATE_RULESET_VERSION = 1
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_RULE_PATH_BENEATH, LANDLOCK_RULE_NET_PORT = 1, 2
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_TRUNCATE, FS_IOCTL_DEV, FS_REFER = 1 << 14, 1 << 15, 1 << 13
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

DENIED_SYSCALLS = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module", "mount", "umount2", "pivot_root", "chroot",
    "swapon", "swapoff", "reboot", "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key",
    "request_key", "unshare", "setns", "open_by_handle_at", "name_to_handle_at", "iopl", "ioperm",
    "acct", "quotactl", "lookup_dcookie", "settimeofday", "clock_settime", "clock_adjtime",
    "adjtimex", "io_uring_setup", "io_uring_enter", "io_uring_register", "fanotify_init",
    "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "syslog", "vhangup",
)  # fmt: skip
TIOCSTI, TIOCLINUX = 0x5412, 0x541C
# Linux's values; the socket module is not imported on the hot path.
AF_UNIX, AF_INET, AF_INET6, AF_PACKET = 1, 2, 10, 17
SOCK_DGRAM, SOCK_RAW, SOCK_SEQPACKET = 2, 3, 5

RLIMITS = {
    "CPU": resource.RLIMIT_CPU,
    "DATA": resource.RLIMIT_DATA,
    "NOFILE": resource.RLIMIT_NOFILE,
    "NPROC": resource.RLIMIT_NPROC,
    "FSIZE": resource.RLIMIT_FSIZE,
    "CORE": resource.RLIMIT_CORE,
}


class SetupError(Exception):
    """A required restriction could not be applied."""


def _die(message: str, code: int = EXIT_SETUP_FAILED) -> NoReturn:
    os.write(2, f"mcpproxy sandbox: {message}\n".encode(errors="replace"))
    os._exit(code)


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(err)}")
    return result


def _prctl(option: int, arg: int = 0, what: str = "prctl") -> int:
    fn = _libc.prctl
    fn.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)
    return _check(fn(option, arg, 0, 0, 0), what)


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="ascii") as fh:
        fh.write(text)


# -- limits -------------------------------------------------------------------------------


def apply_rlimits(limits: Mapping[str, Sequence[int]]) -> None:
    """Set each ``RLIMIT_<NAME>`` to ``(soft, hard)``, never above the current hard limit."""
    for name, (soft, hard) in limits.items():
        which = RLIMITS[name]
        _, cur_hard = resource.getrlimit(which)
        if cur_hard != resource.RLIM_INFINITY:
            hard = min(hard, cur_hard)
            soft = min(soft, hard)
        resource.setrlimit(which, (soft, hard))


def count_processes_of(uid: int) -> int:
    """Processes (threads included) the uid runs now: what a host-wide ``RLIMIT_NPROC`` counts."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry}")
            if st.st_uid == uid:
                total += len(os.listdir(f"/proc/{entry}/task"))
        except OSError:
            continue
    return total


def host_uid() -> int:
    """The uid this process has on the host (through the user namespaces' uid maps)."""
    uid = os.getuid()
    try:
        with open("/proc/self/uid_map", encoding="ascii") as fh:
            for line in fh:
                inside, outside, count = (int(x) for x in line.split())
                if inside <= uid < inside + count:
                    return outside + uid - inside
    except (OSError, ValueError):
        pass
    return uid


def set_pid_max(max_processes: int) -> None:
    """Cap the current, fresh PID namespace at ``max_processes`` processes.

    Kernel 6.14+ keeps ``pid_max`` per namespace. PIDs below 300 are handed out only until
    the first wrap, so the launcher also moves the namespace's last PID to 300 (as
    checkpoint/restore does): from then on new PIDs come from ``[301, pid_max)`` only.
    Without per-namespace ``pid_max`` the launch fails closed for a root gateway (nothing
    else bounds it: the kernel exempts uid 0 from ``RLIMIT_NPROC``) and goes on with
    ``RLIMIT_NPROC`` alone otherwise.
    """
    pid_max = max(PID_RESERVED + 1, PID_RESERVED + max_processes - 1)
    try:
        _write("/proc/sys/kernel/pid_max", str(pid_max))
    except OSError as exc:
        if host_uid() == 0:
            raise SetupError(
                f"cannot cap the PID namespace at {max_processes} processes ({exc}); running as root, "
                "nothing else would bound a fork bomb: use Linux 6.14+, run the gateway as a user, "
                "or set max_processes to null"
            ) from exc
        os.write(2, b"mcpproxy sandbox: warning: no per-namespace pid_max (Linux < 6.14); RLIMIT_NPROC only\n")
        return
    try:  # noqa: SIM105 - contextlib costs an import on every server start
        _write("/proc/sys/kernel/ns_last_pid", str(PID_RESERVED))
    except OSError:
        pass  # the cap is then max_processes + 300, still bounded


# -- PID namespace of our own (landlock backend) ------------------------------------------


def _forward_signals(pid: int) -> None:
    def forward(signum: int, _frame: object) -> None:
        try:  # noqa: SIM105 - contextlib costs an import on every server start
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, forward)


def _exit_like(status: int, *, reraise: bool) -> NoReturn:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if reraise:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def _relay(child: int) -> NoReturn:
    """Outside the namespace: wait for its init, forward signals, exit the same way."""
    _forward_signals(child)
    while True:
        try:
            _, status = os.waitpid(child, 0)
        except ChildProcessError:
            os._exit(EXIT_SETUP_FAILED)
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            _exit_like(status, reraise=True)


def _init(child: int) -> NoReturn:
    """PID 1 of the namespace: reap every orphan, exit when the server exits (128+sig for a signal).

    PID 1 cannot kill itself with a signal, so a signal death is reported the way bubblewrap
    reports it; when PID 1 exits the kernel kills everything left in the namespace.
    """
    _forward_signals(child)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(EXIT_SETUP_FAILED)
        except InterruptedError:
            continue
        if pid == child and (os.WIFEXITED(status) or os.WIFSIGNALED(status)):
            _exit_like(status, reraise=False)


def enter_pid_namespace(max_processes: int) -> bool:
    """Move the rest of the launch into a new PID (and mount) namespace capped at ``max_processes``.

    Returns ``True`` in the process that goes on to exec the server (the other two never
    return), or ``False`` when namespaces are not available here (nothing changed).
    """
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWPID | CLONE_NEWNS
    if os.geteuid() != 0:
        flags |= CLONE_NEWUSER
    _libc.unshare.argtypes = (ctypes.c_int,)
    if _libc.unshare(flags) != 0:
        return False
    if flags & CLONE_NEWUSER:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    init = os.fork()
    if init:
        _relay(init)
    # If the relay is killed, take the whole namespace down with it.
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, what="pdeathsig")
    mount = _libc.mount
    mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p)
    _check(mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make mounts private")
    _check(mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None), "mount /proc")
    set_pid_max(max_processes)
    server = os.fork()
    if server:
        _init(server)
    return True


# -- capabilities --------------------------------------------------------------------------


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> None:
    """Empty the bounding, ambient, effective, permitted and inheritable sets; lock root out.

    Without this a root gateway's server would run with every capability (landlock
    backend), or keep the two bubblewrap left for the PID cap.
    """
    try:
        with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as fh:
            last = int(fh.read())
    except OSError:
        last = 63
    # Securebits and the bounding set need CAP_SETPCAP; without it there is nothing to drop there.
    _libc.prctl(PR_SET_SECUREBITS, SECUREBITS_LOCKED_DOWN, 0, 0, 0)
    for cap in range(last + 1):
        _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _CapHeader(0x20080522, 0)
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), ctypes.byref(data)), "capset")


# -- landlock ------------------------------------------------------------------------------


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _NetPort(ctypes.Structure):
    _fields_ = [("allowed", ctypes.c_uint64), ("port", ctypes.c_uint64)]


def _syscall(*args: Any) -> int:
    fn = _libc.syscall
    fn.restype = ctypes.c_long
    return int(fn(*args))


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is unavailable."""
    abi = _syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), None, ctypes.c_size_t(0),
                   ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))  # fmt: skip
    return max(abi, 0)


def _fs_all(abi: int) -> int:
    rights = (1 << 13) - 1
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def _file_rights(abi: int) -> int:
    return (
        FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | (FS_TRUNCATE if abi >= 3 else 0) | (FS_IOCTL_DEV if abi >= 5 else 0)
    )


def apply_landlock(rules: Mapping[str, Any]) -> None:
    """Restrict the file system (and TCP ports and scopes where the ABI allows) to ``rules``.

    ``rules`` has ``ro`` and ``rw`` path lists (missing paths are skipped), ``dev`` (device
    files opened read-write), ``tcp_connect`` (ports, or ``None`` to leave TCP alone) and
    ``min_abi``. Files get only file rights; the kernel rejects directory rights on them.
    """
    abi = landlock_abi()
    if abi < int(rules.get("min_abi", 1)):
        raise SetupError(f"Landlock ABI {abi} is below the required {rules.get('min_abi', 1)}")
    handled = _fs_all(abi)
    attr = _RulesetAttr(handled, 0, 0)
    size = 8
    tcp_ports = rules.get("tcp_connect")
    if abi >= 4 and tcp_ports is not None:
        attr.net = NET_BIND_TCP | NET_CONNECT_TCP
        size = 16
    if abi >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        size = 24
    fd = _check(_syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), ctypes.byref(attr), ctypes.c_size_t(size),
                         ctypes.c_uint32(0)), "landlock_create_ruleset")  # fmt: skip
    try:
        read = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
        for key, rights in (("ro", read), ("rw", handled), ("dev", FS_READ_FILE | FS_WRITE_FILE)):
            for path in rules.get(key, ()):
                _add_path_rule(fd, path, rights & handled, abi)
        for port in tcp_ports or ():
            _add_rule(fd, LANDLOCK_RULE_NET_PORT, _NetPort(NET_CONNECT_TCP, int(port)), f"landlock port rule {port}")
        _prctl(PR_SET_NO_NEW_PRIVS, 1, what="no_new_privs")
        _check(_syscall(ctypes.c_long(SYS_LANDLOCK_RESTRICT_SELF), ctypes.c_int(fd), ctypes.c_uint32(0)),
               "landlock_restrict_self")  # fmt: skip
    finally:
        os.close(fd)


def _add_rule(ruleset: int, kind: int, rule: ctypes.Structure, what: str) -> None:
    args = (ctypes.c_long(SYS_LANDLOCK_ADD_RULE), ctypes.c_int(ruleset), ctypes.c_int(kind), ctypes.byref(rule))
    _check(_syscall(*args, ctypes.c_uint32(0)), what)


def _add_path_rule(ruleset: int, path: str, rights: int, abi: int) -> None:
    try:
        pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise SetupError(f"landlock rule for {path}: {exc}") from exc
    try:
        if not os.path.isdir(f"/proc/self/fd/{pfd}"):
            rights &= _file_rights(abi)
        _add_rule(ruleset, LANDLOCK_RULE_PATH_BENEATH, _PathBeneath(rights, pfd), f"landlock rule for {path}")
    finally:
        os.close(pfd)


# -- seccomp -------------------------------------------------------------------------------


def _preload_libraries() -> None:
    """Answer pyseccomp's ``find_library`` calls from the usual sonames.

    The real ``ctypes.util`` imports ``subprocess`` and its ``find_library`` runs
    ``ldconfig -p`` (twice here): tens of milliseconds on every server start. When the
    sonames load directly, a stand-in module answers instead; otherwise nothing changes.
    """
    import types

    known: dict[str, str] = {}
    for name, soname in (("c", "libc.so.6"), ("seccomp", "libseccomp.so.2")):
        try:
            ctypes.CDLL(soname)
        except OSError:
            return
        known[name] = soname

    def find_library(name: str) -> str | None:
        if name in known:
            return known[name]
        import importlib

        sys.modules.pop("ctypes.util", None)
        real: Any = importlib.import_module("ctypes.util")
        return real.find_library(name)  # type: ignore[no-any-return]

    stand_in = types.ModuleType("ctypes.util")
    stand_in.find_library = find_library  # type: ignore[attr-defined]
    sys.modules.setdefault("ctypes.util", stand_in)
    if not hasattr(ctypes, "util"):
        ctypes.util = sys.modules["ctypes.util"]  # type: ignore[attr-defined]


def load_seccomp_module(rules: Mapping[str, Any]) -> Any:
    """Import ``pyseccomp`` (before Landlock hides its directory); ``None`` if optional and missing."""
    _preload_libraries()
    try:
        import pyseccomp  # type: ignore[import-untyped,unused-ignore]
    except (ImportError, OSError) as exc:
        if rules.get("required", True):
            raise SetupError(f"seccomp is required but pyseccomp/libseccomp cannot be loaded: {exc}") from exc
        return None
    return pyseccomp


def apply_seccomp(sc: Any, rules: Mapping[str, Any]) -> None:
    """Load a filter: dangerous syscalls fail with EPERM, socket families per ``rules``.

    ``rules``: ``deny_inet`` (no AF_INET/AF_INET6 sockets at all), ``tcp4_only`` (AF_INET
    stream sockets only: no UDP, no raw, no IPv6), ``deny_unix`` (no AF_UNIX ``socket()``;
    ``socketpair`` stays), ``required`` (fail when libseccomp cannot be loaded).
    """
    eperm = sc.ERRNO(errno.EPERM)
    filt = sc.SyscallFilter(sc.ALLOW)
    for name in DENIED_SYSCALLS:
        try:
            filt.add_rule(eperm, name)
        except (OSError, ValueError, RuntimeError):
            continue  # syscall unknown on this architecture
    # glibc falls back to clone() on ENOSYS; clone3's flags live in memory seccomp cannot read.
    filt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    filt.add_rule(eperm, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER))
    for request in (TIOCSTI, TIOCLINUX):
        filt.add_rule(eperm, "ioctl", sc.Arg(1, sc.EQ, request))
    denied_families = [AF_PACKET]
    if rules.get("deny_inet"):
        denied_families += [AF_INET, AF_INET6]
    if rules.get("tcp4_only"):
        denied_families.append(AF_INET6)
        for kind in (SOCK_DGRAM, SOCK_RAW, SOCK_SEQPACKET):
            filt.add_rule(eperm, "socket", sc.Arg(0, sc.EQ, AF_INET), sc.Arg(1, sc.MASKED_EQ, 0xF, kind))
    if rules.get("deny_unix"):
        denied_families.append(AF_UNIX)
    for family in denied_families:
        filt.add_rule(eperm, "socket", sc.Arg(0, sc.EQ, int(family)))
    filt.load()


# -- egress forwarder ----------------------------------------------------------------------


def _pump(src: Any, dst: Any) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:  # noqa: SIM105 - as above
            dst.shutdown(1)  # SHUT_WR
        except OSError:
            pass


def _serve_forwarder(listener: Any, unix_path: str, parent: int) -> NoReturn:
    import socket
    import threading

    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, what="pdeathsig")
    if os.getppid() != parent:
        os._exit(0)
    while True:
        client, _ = listener.accept()
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(unix_path)
        except OSError:
            client.close()
            upstream.close()
            continue
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def start_forwarder(port: int, unix_path: str) -> None:
    """Listen on ``127.0.0.1:port`` and relay every connection to ``unix_path``, in a child."""
    import socket

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    parent = os.getpid()
    if os.fork() == 0:
        _serve_forwarder(listener, unix_path, parent)
    listener.close()


# -- main ----------------------------------------------------------------------------------


def launch(spec: Mapping[str, Any], argv: Sequence[str]) -> NoReturn:
    """Apply ``spec`` to this process and exec ``argv``; never returns."""
    env = {k: os.environ[k] for k in spec.get("env_keys", ()) if k in os.environ}
    env.update(spec.get("env_set", {}))
    max_procs = spec.get("max_processes")
    try:
        if spec.get("pidns") and max_procs and not enter_pid_namespace(int(max_procs)):
            # No namespaces here: fall back to a host-wide RLIMIT_NPROC above what the uid already runs.
            nproc = count_processes_of(os.getuid()) + int(max_procs)
            spec = {**spec, "rlimits": {**spec.get("rlimits", {}), "NPROC": [nproc, nproc]}}
        if spec.get("pid_max") and max_procs:
            set_pid_max(int(max_procs))
        seccomp = spec.get("seccomp")
        sc = load_seccomp_module(seccomp) if seccomp is not None else None
        apply_rlimits(spec.get("rlimits", {}))
        if spec.get("drop_caps", True):
            drop_capabilities()
        _prctl(PR_SET_NO_NEW_PRIVS, 1, what="no_new_privs")
        if spec.get("landlock") is not None:
            apply_landlock(spec["landlock"])
        if seccomp is not None and sc is not None:
            apply_seccomp(sc, seccomp)
        if spec.get("forward") is not None:
            start_forwarder(int(spec["forward"]["port"]), str(spec["forward"]["unix"]))
        if spec.get("cwd"):
            os.chdir(spec["cwd"])
    except (SetupError, OSError) as exc:
        _die(f"setup failed: {exc}")
    try:
        os.execvpe(argv[0], list(argv), env)  # noqa: S606 - exec'ing the server is the launcher's job
    except FileNotFoundError:
        _die(f"{argv[0]}: No such file or directory (inside the sandbox)", EXIT_NOT_FOUND)
    except OSError as exc:
        _die(f"cannot execute {argv[0]}: {exc}")


def main(args: Sequence[str]) -> NoReturn:
    if len(args) < 3 or args[1] != "--":
        _die("usage: _launch <json-spec> -- argv...", 2)
    try:
        spec = json.loads(args[0])
    except ValueError as exc:
        _die(f"bad spec: {exc}", 2)
    for extra in spec.get("pythonpath", ()):
        sys.path.insert(0, extra)
    launch(spec, args[2:])


if __name__ == "__main__":
    main(sys.argv[1:])
