"""Capability mismatch: parameters a tool has no business asking for.

* ``capability.mismatch`` (high): the tool's purpose, inferred from its name and the first
  sentence of its description, needs no local data (a calculator, weather, time, jokes, unit
  conversion, greetings, random numbers), yet a parameter asks for file paths, credentials,
  keys, environment, or the conversation. The purpose vocabulary is deliberately narrow: a
  missed mismatch costs less than flagging every API tool that takes an ``api_token``.
* ``capability.out_of_scope_param``: a parameter that makes the model report about itself or
  its context rather than about the task: the calling model's name (``medium``; it fingerprints
  the client), or its system prompt, conversation history or previous messages (``high``; it
  leaks them). Tools whose purpose *is* models, chats or memory are exempt. A parameter whose
  very name asks for secret contents (``content_from_reading_ssh_id_rsa``) is ``high`` unless
  the tool's own name is about that secret.

``capability.code_execution`` (arbitrary code, commands on remote hosts) is matched with the
offensive vocabulary in ``malicious_terms``, since it is a phrase in the text, not a parameter.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mcpproxy.policy.scanner.model import Finding, Severity
from mcpproxy.policy.scanner.rules.base import Peers, purpose_words, rx
from mcpproxy.policy.scanner.text import clip, name_tokens
from mcpproxy.policy.scanner.view import Kind, ToolView

_PURE = frozenset(
    {
        "calculator", "calculate", "calc", "arithmetic", "math", "multiply", "divide", "subtract",
        "sum", "numbers", "equation", "factorial", "sqrt", "weather", "forecast", "temperature", "timezone",
        "clock", "datetime", "celsius", "fahrenheit", "currency", "joke", "jokes", "quote",
        "greet", "greeting", "hello", "echo", "dice", "coin", "fortune", "random", "uuid",
        "palindrome", "horoscope", "trivia",
    }
)
_NEEDS_DATA = frozenset(
    {
        "file", "files", "path", "directory", "folder", "document", "documents", "image", "pdf",
        "csv", "log", "logs", "repo", "repository", "database", "db", "config", "account",
        "login", "auth", "key", "secret", "token", "password", "credential", "credentials",
        "ssh", "email", "message", "messages", "upload", "download", "backup",
    }
)
_AI = frozenset(
    {
        "model", "models", "llm", "llms", "ai", "ml", "gpt", "openai", "anthropic", "claude",
        "ollama", "inference", "completion", "completions", "embedding", "embeddings", "agent",
        "agents", "assistant",
    }
)
_CHAT = frozenset(
    {
        "chat", "prompt", "prompts", "conversation", "conversations", "memory", "memories",
        "transcript", "history", "summarize", "summary", "message", "messages",
    }
)
# Service API keys are left out on purpose: a weather tool may well need one.
_SENSITIVE = rx(
    r"""\b(?:path|file|filepath|filename|files|dir|directory|folder|contents?|pass(?:word|wd|phrase)?
    |secret|secrets|credentials?|private\s+key|ssh|cookies?|session\s+id|mnemonic|seed|env|environment
    |history|conversation|transcript|system\s+prompt)\b"""
)
_SECRET_CONTENT = re.compile(
    r"^(?=.*\b(?:content|contents|read|reading|dump|copy|text|data)\b).*\b(?:ssh|id\srsa|rsa|private\skey"
    r"|passwd|shadow|credentials?|keychain|mcp\s(?:config|json)|env\sfile|dotenv|aws|cookies?)\b"
)
_MODEL_ID = re.compile(
    r"^(?:(?:llm|ai|assistant|caller|calling|your)\s)+(?:model\s)?(?:name|id|version|identity|provider"
    r"|type|vendor)$|^(?:llm|llm\smodel|ai\smodel|calling\smodel|caller\smodel|your\smodel)$"
)
_MODEL_PROSE = rx(
    r"""\b(?:name|identity|version|type|vendor)\s+of\s+(?:the\s+|your\s+)?(?:llm|model|ai|assistant|agent)
    (?:\s+model)?\s+(?:that|which|who)\s+(?:is\s+)?(?:call|calling|invok|us)\w*\s+(?:this|the)\s+tool"""
)
_CONTEXT_NAME = re.compile(
    r"\b(?:system\s(?:prompt|instructions|message)|conversation(?:\s(?:history|log|context))?|chat\s"
    r"(?:history|log)|previous\smessages|message\shistory|transcript|context\swindow|prior\sturns)\b"
)
_CONTEXT_PROSE = rx(
    r"""\b(?:your|the\s+(?:full|entire|complete|current|whole)|all\s+(?:previous|prior|earlier))\s+
    (?:system\s+prompt|conversation(?:\s+history)?|chat\s+history|message\s+history|previous\s+messages
    |instructions|transcript|context\s+window)
    |\b(?:the\s+user['’]?s\s+|your\s+)?(?:last|previous|prior|recent|earlier)\s+(?:\d+\s+)?(?:messages|turns
    |prompts|exchanges)\b"""
)


def _param_text(view: ToolView) -> dict[str, str]:
    """Per top-level parameter: its name as words, plus its description."""
    out = {p: " ".join(name_tokens(p)) for p in view.params}
    for f in view.fields:
        if f.kind is Kind.PROSE and f.param in out and f.location.endswith(f"{f.param}.description"):
            out[f.param] += " " + f.text[:400].lower()
    return out


def check(view: ToolView, peers: Peers | None) -> Iterator[Finding]:
    """Report parameters that do not fit the tool's purpose."""
    if not view.params:
        return
    purpose = purpose_words(view)
    params = _param_text(view)
    if purpose & _PURE and not purpose & _NEEDS_DATA:
        for param, text in params.items():
            m = _SENSITIVE.search(text)
            if m:
                what = ", ".join(sorted(purpose & _PURE)[:2])
                evidence = clip(f"{what} tool asks for {param!r} ({m.group(0)})")
                yield Finding("capability.mismatch", Severity.HIGH, _loc(param), evidence)
                break
    for param, text in params.items():
        words = " ".join(name_tokens(param))
        if _SECRET_CONTENT.match(words) and not set(name_tokens(view.name)) & set(words.split()):
            evidence = clip(f"{param!r} asks for the contents of a secret")
            yield Finding("capability.out_of_scope_param", Severity.HIGH, _loc(param), evidence)
        elif not purpose & _AI and (_MODEL_ID.match(words) or _MODEL_PROSE.search(text)):
            evidence = clip(f"{param!r} asks which model is calling")
            yield Finding("capability.out_of_scope_param", Severity.MEDIUM, _loc(param), evidence)
        elif not purpose & _CHAT and (_CONTEXT_NAME.search(words) or _CONTEXT_PROSE.search(text)):
            evidence = clip(f"{param!r} asks for the model's context: {text}")
            yield Finding("capability.out_of_scope_param", Severity.HIGH, _loc(param), evidence)


def _loc(param: str) -> str:
    return f"inputSchema.properties.{param}"

