"""Where the secrets of a text are: the built-in finders, each giving the spans of the
secrets it sees (the key of a ``key=value`` is kept, only its value is a secret).

- a value named by a secret-looking key, whatever the syntax: ``DB_PASS=x``,
  ``"api_key": "x"``, ``PASSWORD = \\'x\\'`` (a repr), ``:password => 'x'``,
  ``<password>x</password>``, ``token%3Dx`` (URL-encoded), ``--password x``;
- a whole header value: ``Authorization: Bearer x``, ``Cookie: a=b; c=d``;
- the user and password of a URL, a password holding ``/`` included;
- the formats of the common credentials: cloud, CI and payment tokens, JWTs, PEM private
  keys; ``mysql -px``; a netrc's password.

A key names a secret when its last word (or two) does (``password``, ``token``,
``api key``...), or when it holds a strong one (``password``, ``secret``) and does not end
in a word that names something else (``password_file``, ``token_type``). Patterns find the
usual shapes, not every secret: one printed alone, with no name beside it, is not found.
"""

from __future__ import annotations

import re
from functools import lru_cache

# The longest value a key-value finder takes: values are bounded so a long line costs
# linear time, and a scrubbed stream's carried overlap (STREAM_OVERLAP) always holds one.
LONGEST_VALUE = 4096


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


LAST_WORDS = _words(
    """password passwd passphrase pwd pass secret secrets token apikey credential credentials auth
    authorization cookie sessionid sig signature accountkey privatekey accesskey secretkey clientsecret dsn"""
)
LAST_PAIRS = frozenset(
    tuple(pair.split("_"))
    for pair in _words(
        """api_key access_key private_key secret_key account_key session_id client_secret auth_token
        refresh_token access_token id_token session_token security_token master_key encryption_key signing_key"""
    )
)
STRONG_WORDS = _words("password passwd passphrase secret")
# Last words that make a key holding a strong word name something other than the secret.
NEUTRAL_LAST = _words(
    """file path dir hash length len policy min max count type expiry expires expired age changed reset
    prompt rotation strength hint"""
)
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


@lru_cache(maxsize=4096)  # keys repeat: a job prints the same ones line after line
def names_a_secret(key: str) -> bool:
    words = [word.lower() for word in _WORD.findall(key)]
    if not words:
        return False
    if words[-1] in LAST_WORDS or tuple(words[-2:]) in LAST_PAIRS:
        return not (words[-1] == "pwd" and key.isupper() and len(words) == 1)  # the shell's $PWD is a path
    return bool(STRONG_WORDS & set(words)) and words[-1] not in NEUTRAL_LAST


# key (bare, quoted, escaped-quoted as in a repr, a Ruby symbol, a command-line option),
# then a separator: = := : => or a URL-encoded =.
_PAIR = re.compile(
    r"(?<![\w.-])(?P<q>\\*[\"']?)(?P<key>(?::|-{1,2})?[A-Za-z_][\w.-]{0,63})(?P=q)"
    r"[ \t]{0,3}(?P<sep>=>|:=|=|:(?!//)|%3[Dd])[ \t]{0,3}"
)
# A value: quoted (its quotes escaped any number of times, as in a repr or in JSON
# within JSON), or bare, up to a space, a quote, a tag, an & or a ;.
_VALUE = re.compile(
    rf"""(?P<qq>\\*)(?P<quote>["'])(?P<quoted>[^\r\n]{{1,{LONGEST_VALUE}}}?)(?<!\\)(?P=qq)(?P=quote)
    | (?P<bare>(?:%(?!26|20)[0-9A-Fa-f]{{2}}|\\(?![\\"'])|[^\s"'<>&;%\\]){{1,{LONGEST_VALUE}}})""",
    re.X,
)
_OPTION = re.compile(r"(?<![\w-])--?(?P<key>[A-Za-z][\w-]{0,63})[ \t]+(?P<value>[^\s\-\"'][^\s\"']{0,4095})")
_XML = re.compile(rf"<(?P<tag>[A-Za-z_][\w:.-]{{0,63}})>(?P<value>[^<\r\n]{{1,{LONGEST_VALUE}}})</(?P=tag)>")
_HEADER = re.compile(
    r"(?i)(?<![\w-])(?:proxy-)?authorization\\*[\"']?[ \t]*[:=][ \t]*\\*[\"']?(?P<value>[^\r\n\"'\\]+)"
    r"|(?i:(?<![\w-])(?:set-)?cookie)[ \t]*:[ \t]*(?P<cookie>[^\r\n\"'\\]+)"
)
_URL = re.compile(r"(?i)\b[a-z][a-z0-9+.-]{0,30}://(?P<value>[^\s@/:]*:[^\s@]{1,4096}|[^\s@/:?#]{1,4096})@(?=[\w\[])")
# The formats of the common credentials. Each starts with one of the lookahead's characters,
# so the long alternation is tried only where one stands (ten times faster on ordinary text).
FORMAT_LIST = [
    r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b",  # AWS access key ids
    r"\bgh[pousr]_[A-Za-z0-9]{30,255}\b|\bgithub_pat_[A-Za-z0-9_]{22,255}\b",  # GitHub
    r"\bglpat-[A-Za-z0-9_-]{20,}",  # GitLab
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}|\bxapp-\d-[A-Za-z0-9-]{10,}",  # Slack
    r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+",  # Slack webhooks
    r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}|\bwhsec_[A-Za-z0-9]{16,}",  # Stripe
    r"\bAIza[0-9A-Za-z_-]{35}|\bGOCSPX-[A-Za-z0-9_-]{20,}|\bya29\.[0-9A-Za-z_-]{20,}",  # Google
    r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JWTs
    r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}",  # SendGrid
    r"\bkey-[0-9a-f]{32}\b",  # Mailgun
    r"\bnpm_[A-Za-z0-9]{36}\b|\bpypi-[A-Za-z0-9_-]{50,}",  # npm, PyPI
    r"\bsk-(?:proj-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{20,}",  # OpenAI, Anthropic
    r"\bdo[pro]_v1_[a-f0-9]{64}\b|\bhv[sb]\.[A-Za-z0-9_-]{20,}",  # DigitalOcean, Vault
    r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b|\bdapi[a-f0-9]{32}\b|\bSK[0-9a-fA-F]{32}\b",  # Shopify, ...
    r"\bHRKU-[A-Za-z0-9_-]{20,}|\bATATT3[A-Za-z0-9_=-]{20,}|\bAGE-SECRET-KEY-1[0-9A-Z]{58}",  # Heroku, ...
]
FORMATS = re.compile(r"(?=[AGHSdeghknprswxy])(?:" + "|".join(FORMAT_LIST) + ")")
_BEARER = re.compile(r"(?<=\b[Bb]earer )(?P<value>[A-Za-z0-9._~+/-]{8,}=*)(?![\w=])")
_MYSQL_P = re.compile(r"\bmysql(?:dump|admin|import|show)?\b[^\r\n]{0,200}?[ \t]-p(?P<value>[^\s\-][^\s]*)")
_NETRC = re.compile(r"\bmachine[ \t]+\S+[ \t]+login[ \t]+\S+[ \t]+password[ \t]+(?P<value>\S+)")
PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
PEM_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY-----")
# A whole PEM block, its lines real or escaped (\n) as in JSON.
_PEM = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?P<value>(?:.|\n){1,16384}?)(?=-----END [A-Z0-9 ]*PRIVATE KEY-----)"
)


def spans(text: str) -> list[tuple[int, int]]:
    """The spans of ``text`` the built-in finders take for secrets (overlapping ones may repeat)."""
    found = _pairs(text)
    found += [m.span("value") for m in _OPTION.finditer(text) if names_a_secret(m["key"])]
    found += [m.span("value") for m in _XML.finditer(text) if names_a_secret(m["tag"])]
    found += [m.span(m.lastgroup) for m in _HEADER.finditer(text)]
    found += [m.span("value") for finder in (_URL, _MYSQL_P, _NETRC, _PEM, _BEARER) for m in finder.finditer(text)]
    found += [m.span() for m in FORMATS.finditer(text)]
    return found


def _pairs(text: str) -> list[tuple[int, int]]:
    """The values of ``key=value`` pairs whose key names a secret."""
    found = []
    for pair in _PAIR.finditer(text):
        if not names_a_secret(pair["key"]):
            continue
        value = _VALUE.match(text, pair.end())
        if value is not None:
            found.append(value.span(value.lastgroup))
    return found
