"""References to secrets: key files, credential stores, environment files, the gateway's own config.

``secrets.sensitive_path`` fires when tool metadata names a place where secrets live: SSH keys,
cloud CLI credentials, ``.env`` files, ``.netrc``, shell history, keychains and browser
password stores, and MCP client or gateway configs (``~/.mcpproxy``, ``mcp_config.json``,
``claude_desktop_config.json``), which hold every upstream server's tokens. A generic pattern
covers home or ``/etc`` paths whose name says token, secret, credential, password or key.

Some tools legitimately mention such paths: an SSH tool documents its default key, a kubectl
tool its kubeconfig. When the path's domain matches the tool's own purpose (name or first
sentence), or the field is a path-typed parameter's default, the finding is only ``low``.

``secrets.read_request`` is the attack itself: an imperative to read, cat, send or include the
secret (``read ~/.ssh/id_rsa``, ``$(cat ~/.aws/credentials)``). It is critical unless the path
belongs to the tool's own domain (then ``low``: a dotenv loader loads ``.env``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mcpproxy.policy.scanner.gate import gate_for
from mcpproxy.policy.scanner.model import Finding, Severity
from mcpproxy.policy.scanner.rules.base import hit, purpose_words, rx
from mcpproxy.policy.scanner.text import name_tokens
from mcpproxy.policy.scanner.view import Field, Kind, ToolView

_HOME = r"(?:~|\$home|\$\{home\}|%userprofile%|%appdata%|/home/[\w.-]+|/users/[\w.-]+|/root)"
_DOMAINS: dict[str, str] = {
    "ssh": r"(?<![\w.])\.ssh\b(?:/[\w.-]+)?|\bid_(?:rsa|dsa|ecdsa|ed25519)(?:\.pub)?\b|\bauthorized_keys\b",
    "env": r"(?<![\w.])\.env(?:\.[\w-]+)?(?![\w/])",
    "aws": r"\.aws/(?:credentials|config)\b",
    "gcloud": r"\.config/gcloud\b|\bapplication_default_credentials\.json\b|\.gcloud/",
    "azure": r"(?<![\w.])\.azure/",
    "kube": r"\.kube/config\b",
    "docker": r"\.docker/config\.json\b",
    "git": r"(?<![\w.])\.git-credentials\b|(?<![\w.])\.netrc\b",
    "package": r"(?<![\w.])\.(?:npmrc|pypirc|pgpass|my\.cnf)\b",
    "gpg": r"(?<![\w.])\.gnupg\b|\bsecring\.gpg\b",
    "system": r"/etc/(?:passwd|shadow|sudoers|master\.passwd)\b|/proc/(?:self|\$\$|\d+|\[?pid\]?)/environ\b",
    "history": r"(?<![\w.])\.(?:bash|zsh|sh|python|mysql|psql)_history\b",
    "keychain": r"\blogin\.keychain\b|\bkeychain(?:s|\s+(?:items?|entries|passwords?|contents))?\b"
    r"|\bgnome-keyring\b|\bkwallet\b|\bcredential\s+manager\b",
    "browser": r"\blogin\s+data\b|\bcookies\.sqlite\b|\blogins\.json\b|\bkey[34]\.db\b",
    "wallet": r"\bwallet\.dat\b|\b(?:seed|recovery|mnemonic)\s+phrases?\b",
    "mcp": r"(?<![\w.])\.mcpproxy\b|\bmcp_config\.json\b|\bclaude_desktop_config\.json\b"
    r"|\.cursor/mcp\.json\b|(?<![\w.])mcp\.json\b|\.codeium/windsurf\b",
    "secretfile": _HOME + r"/[\w./-]*?(?:token|secret|credential|passw|[_-]keys?\b|auth)"
    r"[\w./-]*|/etc/[\w./-]*(?:passw|secret|credential|token)[\w./-]*",
}
_PATHS = tuple((domain, rx(pattern)) for domain, pattern in _DOMAINS.items())
_MAYBE = gate_for(*(p for _, p in _PATHS))
# What counts as "the tool's own domain" for each kind of secret location.
_OWNERS: dict[str, frozenset[str]] = {
    "ssh": frozenset({"ssh", "sftp", "scp", "keys", "keygen"}),
    "env": frozenset({"env", "dotenv", "environment"}),
    "aws": frozenset({"aws", "s3", "ec2", "iam"}),
    "gcloud": frozenset({"gcloud", "gcp", "google"}),
    "azure": frozenset({"azure", "az"}),
    "kube": frozenset({"kube", "kubectl", "kubernetes", "k8s", "helm"}),
    "docker": frozenset({"docker", "registry", "container"}),
    "git": frozenset({"git", "github", "gitlab"}),
    "package": frozenset({"npm", "pypi", "postgres", "postgresql", "mysql", "package"}),
    "gpg": frozenset({"gpg", "pgp", "sign", "signing", "encrypt", "decrypt"}),
    "keychain": frozenset({"keychain", "keyring", "password", "passwords", "vault", "secrets"}),
    "mcp": frozenset({"mcpproxy"}),
}
_PATH_PARAM = frozenset({"path", "file", "dir", "directory", "config", "kubeconfig", "identity", "key"})
_READ = re.compile(
    r"""\$\(\s*(?:cat|type|less|more|head|tail|base64|xxd|od|strings)\b[^)]*$
    |`(?:cat|type|head|tail|base64)\s[^`]*$
    |\b(?:read|cat|open|load|include|send|upload|post|copy|attach|print|output|dump|extract|collect
    |access|fetch|pass|provide|append|forward|retrieve|grab|obtain|share|submit|paste|log|steal
    |exfiltrate)\b[^.\n;]{0,60}$
    |\b(?:contents?|credentials|token|key|secrets?)\s+(?:of|from|in|at|stored\s+in)\s+(?:the\s+)?
    (?:file\s+)?(?:at\s+)?$""",
    re.VERBOSE,
)


def check(field: Field, view: ToolView) -> Iterator[Finding]:
    """Report mentions of secret locations, and instructions to read or send them."""
    if field.kind not in (Kind.PROSE, Kind.VALUE) or not _MAYBE(field.lower):
        return
    text = field.lower
    purpose: frozenset[str] | None = None
    taken: list[tuple[int, int]] = []
    for domain, pattern in _PATHS:
        m = pattern.search(text)
        if m is None or any(lo < m.end() and m.start() < hi for lo, hi in taken):
            continue
        taken.append((m.start(), m.end()))
        if purpose is None:
            purpose = purpose_words(view)
        owned = bool(_OWNERS.get(domain, frozenset()) & purpose)
        if field.kind is Kind.VALUE and field.param is not None:
            owned = owned or bool(_PATH_PARAM & set(name_tokens(field.param)))
        before = text[max(0, m.start() - 80) : m.start()]
        if _READ.search(before):
            sev = Severity.LOW if owned else Severity.CRITICAL
            yield hit("secrets.read_request", sev, field, m.start(), m.end())
        else:
            sev = Severity.LOW if owned else Severity.HIGH
            yield hit("secrets.sensitive_path", sev, field, m.start(), m.end())
