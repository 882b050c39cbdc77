"""Masking secrets in anything drkit prints: URLs, error lines, config values.

A store URL may carry a secret by mistake (``credentials=AKIA…:wJal…`` instead of
``credentials=env:NAME``, or ``user:password@`` in an endpoint), and error lines quote
URLs; cron mails every error line. Everything printed from a config value or an exception
goes through ``redact_text`` at the CLI's single error printer, and URLs are shown through
``redact_url``.
"""

from __future__ import annotations

import re

MASK = "***"
SECRET_PARAMS = frozenset({"key", "token", "access_token", "secret", "sig", "signature",
                           "sign", "password", "apikey", "api_key", "secret_key",
                           "secretkey", "secret_id", "secretid", "access_key",
                           "aws_secret_access_key", "x-amz-signature", "q-signature"})
_NAMES = "|".join(re.escape(n) for n in sorted(SECRET_PARAMS, key=len, reverse=True))
_SECRET_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_])((?:" + _NAMES + r")=)[^&\s'\"]+",
                             re.IGNORECASE)
# credentials=env:NAME names a variable and is fine to show; anything else is the secret.
_CREDENTIALS = re.compile(r"(credentials=)(?!env:[A-Za-z_][A-Za-z0-9_]*(?:[&\s'\"]|$))"
                          r"[^&\s'\"]+", re.IGNORECASE)
# user:password@ after a scheme; a secret key may hold "/", so everything up to the "@"
# (within one word) is masked.
_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)(?:(?![a-z][a-z0-9+.-]*://)[^@\s'\"])+@",
                       re.IGNORECASE)
_KEY_IDS = re.compile(r"\b(AKIA|ASIA|AKID)[A-Za-z0-9]{12,}")


def redact_url(url: str) -> str:
    """The URL with secret query parameters and any user:password masked; everything else
    exactly as written (no re-encoding, so what is shown is what the user typed)."""
    return redact_text(url)


def redact_text(text: str) -> str:
    """Mask ``key=...``-style secrets, non-env credentials, URL user:password (also inside
    an ``endpoint=`` parameter) and cloud access-key ids in free text."""
    text = _SECRET_IN_TEXT.sub(r"\1" + MASK, text)
    text = _CREDENTIALS.sub(r"\1" + MASK, text)
    text = _USERINFO.sub(r"\1" + MASK + "@", text)
    return _KEY_IDS.sub(r"\1" + MASK, text)
