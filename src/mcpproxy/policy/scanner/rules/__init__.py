"""The rule families, in the order the engine runs them.

Each family lives in its own module, with the attack class and the reasoning in its docstring:
``unicode`` (hidden characters), ``instructions`` and ``steering`` (text that commands the
model), ``secrets`` (key files and credential stores), ``exfiltration`` (data sent elsewhere,
embedded commands), ``encoding`` (decoders whose output is rescanned), ``shadowing``
(cross-server imitation), ``capability`` (parameters that do not fit the purpose) and
``malicious`` (offensive capabilities declared in the open). ``RULE_IDS`` lists every rule id,
for documentation and for checking that reports only use known ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mcpproxy.policy.scanner.model import Finding
from mcpproxy.policy.scanner.rules import (
    capability,
    encoding,
    exfiltration,
    instructions,
    malicious,
    malicious_terms,
    secrets,
    shadowing,
    steering,
    unicode,
)
from mcpproxy.policy.scanner.rules.base import Peers, TextRule, ToolRule
from mcpproxy.policy.scanner.view import Field

TEXT_RULES: tuple[TextRule, ...] = (
    unicode.check,
    instructions.check,
    steering.check,
    secrets.check,
    exfiltration.check,
    shadowing.check_behaviour,
    malicious.check,
)
TOOL_RULES: tuple[ToolRule, ...] = (
    shadowing.check_names,
    shadowing.check_references,
    capability.check,
)
Decoder = Callable[[Field], Iterable[tuple[Finding | None, Field]]]


def _plain(fn: Callable[[Field], Iterable[Field]]) -> Decoder:
    return lambda field: ((None, derived) for derived in fn(field))


DECODERS: tuple[Decoder, ...] = (
    _plain(unicode.decode_tags),
    _plain(unicode.normalise),
    encoding.decode,
)

RULE_IDS: frozenset[str] = frozenset(
    {
        "unicode.tag_chars", "unicode.zero_width", "unicode.bidi_control", "unicode.invisible",
        "unicode.homoglyph_name", "unicode.mixed_script",
        "instruction.hidden_tag", "instruction.override", "instruction.conceal",
        "instruction.persistent", "instruction.tamper_args", "instruction.prerequisite",
        "instruction.preference", "instruction.authority",
        "secrets.sensitive_path", "secrets.read_request",
        "exfil.external_send", "exfil.hidden_file", "exfil.include_contents",
        "exfil.embedded_command", "exfil.redirect",
        "encoding.base64", "encoding.hex", "encoding.escapes",
        "shadow.name_collision", "shadow.name_imitation", "shadow.copied_description",
        "shadow.cross_server_reference", "shadow.behaviour_override",
        "capability.mismatch", "capability.out_of_scope_param",
        *(rule for rule, _, _ in malicious_terms.TERMS),
    }
)

__all__ = ["DECODERS", "RULE_IDS", "TEXT_RULES", "TOOL_RULES", "Decoder", "Peers"]
