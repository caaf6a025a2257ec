"""Secret detection and redaction.

Every secret below is fake and assembled at run time, so that no literal in the repository
looks like a credential to a push-protection scanner.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import random
import string

import pytest

from mcpproxy.errors import InvalidArguments
from mcpproxy.filters.secrets import Detection, Pattern, detect, is_secret_key, mask, redact, redact_json

RNG = random.Random(20240601)


def rand(alphabet: str, n: int) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(n))


ALNUM = string.ascii_letters + string.digits
AWS_KEY_ID = "AKIA" + "IOSFODNN7EXAMPLE"  # AWS's documented example
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"  # AWS's documented example
GITHUB = "gh" + "p_" + rand(ALNUM, 36)
GITHUB_PAT = "github" + "_pat_" + rand(ALNUM + "_", 82)
SLACK = "xo" + "xb-" + rand(string.digits, 12) + "-" + rand(ALNUM, 24)
SLACK_HOOK = "https://hooks.slack.com/" + "services/T" + rand(ALNUM, 8) + "/B" + rand(ALNUM, 8) + "/" + rand(ALNUM, 24)
OPENAI = "sk-" + "proj-" + rand(ALNUM + "-_", 48)
OPENAI_LEGACY = "sk-" + rand(ALNUM, 48)
ANTHROPIC = "sk-" + "ant-api03-" + rand(ALNUM + "-_", 93)
GOOGLE = "AI" + "za" + rand(ALNUM + "-_", 35)
STRIPE = "sk_" + "live_" + rand(ALNUM, 24)
STRIPE_RESTRICTED = "rk_" + "test_" + rand(ALNUM, 24)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


JWT = ".".join(
    [b64url(b'{"alg":"HS256","typ":"JWT"}'), b64url(b'{"sub":"1234567890","name":"Jo"}'), b64url(RNG.randbytes(32))]
)
PEM_BODY = "\n".join(base64.b64encode(RNG.randbytes(48)).decode() for _ in range(6))
PRIVATE_KEY = "-----BEGIN " + "RSA PRIVATE KEY-----\n" + PEM_BODY + "\n-----END RSA " + "PRIVATE KEY-----"
RANDOM_TOKEN = "Zx9Qw3Er7Ty1Ui5Op2As8Df4Gh6Jk0Lz"


def luhn_complete(prefix: str, length: int) -> str:
    """``prefix`` padded with random digits, plus the Luhn check digit, ``length`` digits in all."""
    body = prefix + rand(string.digits, length - len(prefix) - 1)
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str(-total % 10)


VISA = luhn_complete("4", 16)
AMEX = luhn_complete("37", 15)


def kinds(text: str) -> list[str]:
    return [d.kind for d in detect(text)]


DETECTABLE = [
    ("aws_access_key", AWS_KEY_ID, "aws_access_key_id = {}\n"),
    ("aws_secret_key", AWS_SECRET, "aws_secret_access_key = {}\n"),
    ("aws_secret_key", AWS_SECRET, '{{"AccessKeyId": "x", "SecretAccessKey": "{}"}}'),
    ("github_token", GITHUB, "git clone https://github.com/o/r # token {}"),
    ("github_token", GITHUB_PAT, "GH={}"),
    ("slack_token", SLACK, "slack: {}."),
    ("slack_token", SLACK_HOOK, "POST {} done"),
    ("openai_key", OPENAI, "OPENAI_API_KEY={}"),
    ("openai_key", OPENAI_LEGACY, "key {} end"),
    ("anthropic_key", ANTHROPIC, "export ANTHROPIC_API_KEY='{}'"),
    ("google_api_key", GOOGLE, "https://maps.googleapis.com/api?key={}&x=1"),
    ("stripe_key", STRIPE, "stripe.api_key = '{}'"),
    ("stripe_key", STRIPE_RESTRICTED, "{}"),
    ("jwt", JWT, "Authorization: Bearer {}"),
    ("private_key", PRIVATE_KEY, "here it is:\n{}\nbye"),
    ("card_number", VISA, "card: {} exp 12/29"),
    ("card_number", " ".join([VISA[:4], VISA[4:8], VISA[8:12], VISA[12:]]), "Card {}."),
    ("card_number", "-".join([AMEX[:4], AMEX[4:10], AMEX[10:]]), "amex {}"),
    ("high_entropy", RANDOM_TOKEN, "session={}"),
    ("high_entropy", RANDOM_TOKEN, '{{"id": "{}"}}'),
    ("secret_assignment", "Sup3r-S3cret!", "DB_PASSWORD=Sup3r-S3cret!"),
    ("secret_assignment", "hunter2hunter2", '{{"password": "hunter2hunter2"}}'),
    ("secret_assignment", "abc123def456", "  api_key: abc123def456\n"),
    ("secret_assignment", "0123456789abcdef0123", "X-Auth-Token: 0123456789abcdef0123"),
]


@pytest.mark.parametrize(
    ("kind", "secret", "template"), DETECTABLE, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(DETECTABLE)]
)
def test_detects_each_kind_and_redacts_only_the_secret(kind: str, secret: str, template: str) -> None:
    text = template.format(secret)
    found = detect(text)
    assert [d.kind for d in found] == [kind]
    start, end = found[0].span
    assert text[start:end] == secret
    assert redact(text).text == text.replace(secret, f"[REDACTED:{kind}]")


def test_anthropic_keys_are_not_reported_as_openai_keys() -> None:
    assert kinds(ANTHROPIC) == ["anthropic_key"]


@pytest.mark.parametrize(
    ("url", "password"),
    [
        ("postgres://app:" + "s3cr3t-pw" + "@db.internal:5432/prod", "s3cr3t-pw"),
        ("postgresql://app:" + "p@ss:w0rd" + "@db/prod?sslmode=require", "p@ss:w0rd"),
        ("mongodb+srv://root:" + "Mongo123" + "@cluster0.abcde.mongodb.net/test", "Mongo123"),
        ("redis://:" + "hunter2" + "@cache:6379/0", "hunter2"),
        ("mysql://u:" + "pw%40x" + "@h/db", "pw%40x"),
        ("amqps://guest:" + "guest" + "@mq.example.com/vhost", "guest"),
        ("https://user:" + "tok" + "@github.com/o/r.git", "tok"),
    ],
)
def test_connection_strings_lose_only_their_password(url: str, password: str) -> None:
    result = redact(f"DATABASE_URL={url} ")
    expected = url.replace(f":{password}@", ":[REDACTED:connection_string_password]@")
    assert result.text == f"DATABASE_URL={expected} "
    assert [d.kind for d in result.detections] == ["connection_string_password"]


def test_private_key_variants() -> None:
    truncated = PRIVATE_KEY.split("-----END")[0]  # output cut before the END line
    assert redact(truncated + "\n...").text == "[REDACTED:private_key]..."
    escaped = json.dumps({"key": PRIVATE_KEY})  # a key inside a JSON document: "\n" escapes
    assert redact(escaped).text == '{"key": "[REDACTED:private_key]"}'
    encrypted = PRIVATE_KEY.replace("KEY-----\n", "KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n", 1)
    assert kinds(encrypted) == ["private_key"]
    code = 'START = b"-----BEGIN ' + 'OPENSSH PRIVATE KEY-----"\nEND = b"-----END OPENSSH PRIVATE KEY-----"'
    assert detect(code) == []


def test_certificates_are_public_and_kept() -> None:
    cert = "-----BEGIN CERTIFICATE-----\n" + PEM_BODY + "\n-----END CERTIFICATE-----"
    assert detect(cert) == []


def luhn_ok(number: str) -> bool:
    return any(d.kind == "card_number" for d in detect(f"n {number} n"))


def test_luhn_and_issuer_rules() -> None:
    assert luhn_ok(VISA)
    wrong_check_digit = VISA[:-1] + str((int(VISA[-1]) + 1) % 10)
    assert not luhn_ok(wrong_check_digit)
    # Luhn-valid but not a card: 13-digit millisecond timestamp, unknown issuer prefix, wrong length.
    assert not luhn_ok(luhn_complete("17", 13))
    assert not luhn_ok(luhn_complete("9", 16))
    assert not luhn_ok(luhn_complete("37", 16))
    # Part of something longer: a longer number, a decimal fraction, an identifier, mixed separators.
    assert not luhn_ok("1" + VISA)
    assert not luhn_ok("0." + VISA)
    assert not luhn_ok("id_" + VISA)
    assert not luhn_ok(f"{VISA[:4]} {VISA[4:8]}-{VISA[8:12]} {VISA[12:]}")


ORDINARY = [
    "-rw-r--r--  1 dev staff  48213 Jan  3 12:01 src/mcpproxy/filters/SecretsDetectorTests2024.py\n"
    "drwxr-xr-x  9 dev staff    288 Jan  3 12:01 node_modules/@typescript-eslint/eslint-plugin-tslint\n",
    "commit 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12\nAuthor: Dev <dev@example.com>\n"
    "Merge: 7d3f0c1 9a8b7c6\n    Fix #42 (see https://github.com/org/repo/pull/4242/files#diff-3f2a)\n",
    json.dumps(
        {
            "id": "123e4567-e89b-12d3-a456-426614174000",
            "created": 1717243200123,
            "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "integrity": "sha512-" + base64.b64encode(RNG.randbytes(64)).decode(),
            "url": "https://api.example.com/v2/items?page=3&per_page=100",
            "nextPageToken": "CiAKGjBpNDd2Nm",
        }
    ),
    "def get_token(self, request: HttpRequest) -> AccessTokenResponse:\n"
    "    token = self.oauth_client.fetch_token(request)\n    password: str | None = None\n"
    "    secret_key = settings.SECRET_KEY\n    api_key = os.environ['API_KEY']\n",
    "class AbstractSingletonProxyFactoryBean2(HttpServletRequestWrapperFactory3): pass\n",
    "token: string (required)\npassword: ******** \nmax_tokens=4096 token_count=123456789\n",
    "image/png;base64," + base64.b64encode(RNG.randbytes(600)).decode(),  # a payload, not a credential
    "docker pull ghcr.io/org/app@sha256:" + "ab" * 32 + "\nISBN 978-3-16-148410-0, call +1 415 555 0100\n",
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf",
]


@pytest.mark.parametrize("text", ORDINARY, ids=[f"ordinary-{i}" for i in range(len(ORDINARY))])
def test_ordinary_tool_output_has_no_detections(text: str) -> None:
    assert detect(text) == []


def test_high_entropy_thresholds() -> None:
    assert kinds("x " + RANDOM_TOKEN[:24]) == ["high_entropy"]
    assert kinds("x " + RANDOM_TOKEN[:23]) == []  # too short
    assert kinds("x " + RANDOM_TOKEN.lower()) == []  # no upper case
    assert kinds("x getUserAccountSettingsForOrganization42") == []  # CamelCase words
    assert kinds("x " + RNG.randbytes(20).hex()) == []  # hex: a digest, not reported


def test_user_patterns_rank_after_builtins_and_before_generic() -> None:
    employee = Pattern.compile("employee_id", r"EMP-\d{6}")
    assert kinds("badge EMP-123456 ok") == []
    assert [d.kind for d in detect("badge EMP-123456 ok", extra_patterns=[employee])] == ["employee_id"]
    greedy = Pattern.compile("anything_long", r"\S{20,}")
    assert [d.kind for d in detect(f"k {AWS_KEY_ID}", extra_patterns=[greedy])] == ["aws_access_key"]
    named = Pattern.compile("ticket", r"TICKET=(?P<v>\w+)", group="v")
    assert redact("TICKET=abc", extra_patterns=[named]).text == "TICKET=[REDACTED:ticket]"


@pytest.mark.parametrize(("kind", "regex"), [("bad kind", "x"), ("ok", "("), ("ok", "x*")])
def test_bad_user_patterns_are_refused(kind: str, regex: str) -> None:
    with pytest.raises(InvalidArguments):
        Pattern.compile(kind, regex)


def test_detections_are_ordered_and_redaction_is_idempotent() -> None:
    text = f"a={AWS_KEY_ID} b={GITHUB} c={JWT} password={'Xy9' * 4}"
    found = detect(text)
    assert [d.kind for d in found] == ["aws_access_key", "github_token", "jwt", "secret_assignment"]
    assert all(a.span[1] <= b.span[0] for a, b in itertools.pairwise(found))
    once = redact(text).text
    assert redact(once).text == once and not detect(once)


def test_redact_json_walks_values_and_honours_secret_field_names() -> None:
    doc = {
        "user": "bob",
        "password": "pw",
        "API-Key": "short",
        "clientSecret": "x",
        "nested": [{"token": "t1", "note": f"key {AWS_KEY_ID}"}, {"credentials": ["a", "b"]}],
        "nextPageToken": "abc",
        "NextToken": "def",
        "max_tokens": 100,
        "secret": None,
        "tokenizer": "cl100k",
        AWS_KEY_ID: "keys are kept",
    }
    original = copy.deepcopy(doc)
    redacted, found = redact_json(doc)
    assert doc == original
    assert redacted["user"] == "bob" and redacted["tokenizer"] == "cl100k"
    for key in ("password", "API-Key", "clientSecret"):
        assert redacted[key] == "[REDACTED:secret_field]"
    assert redacted["nested"] == [
        {"token": "[REDACTED:secret_field]", "note": "key [REDACTED:aws_access_key]"},
        {"credentials": ["[REDACTED:secret_field]", "[REDACTED:secret_field]"]},
    ]
    assert (redacted["nextPageToken"], redacted["NextToken"], redacted["max_tokens"]) == ("abc", "def", 100)
    assert redacted["secret"] is None and redacted[AWS_KEY_ID] == "keys are kept"
    assert {d.path for d in found} == {
        "/password",
        "/API-Key",
        "/clientSecret",
        "/nested/0/token",
        "/nested/0/note",
        "/nested/1/credentials/0",
        "/nested/1/credentials/1",
    }
    assert redact_json(redacted)[0] == redacted


def test_is_secret_key() -> None:
    assert all(map(is_secret_key, ["password", "db_passwd", "X-Auth-Token", "aws_secret_access_key", "Cookie"]))
    assert not any(map(is_secret_key, ["token_type", "max_tokens", "secret_name", "nextPageToken", "author"]))


def test_mask() -> None:
    assert mask("sk-abcdefghijklmnopf3a9") == "sk-…a9"
    assert mask("hunter2") == mask("") == "********"
    detection = detect(f"k {GITHUB}")[0]
    assert detection == Detection("github_token", (2, 2 + len(GITHUB)), GITHUB[:3] + "…" + GITHUB[-2:])
