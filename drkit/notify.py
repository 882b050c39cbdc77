"""Webhook notifications: a generic JSON POST and the WeCom group-robot markdown message.

``send_notification`` never raises: a notification that cannot be delivered is logged
(with secrets in the URL masked) and reported back, so it can never hide the failure it
was meant to announce. WeCom's group robot takes
``{"msgtype": "markdown", "markdown": {"content": "..."}}`` at
``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY`` and answers HTTP 200 with
``{"errcode": 0, "errmsg": "ok"}``; a non-zero errcode is a failed delivery. The ``key``
is the robot's only credential, so it is never logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import requests

from drkit.redact import redact_text, redact_url

log = logging.getLogger(__name__)

WECOM_MAX_BYTES = 4096  # the robot refuses markdown content longer than this
@dataclass(frozen=True)
class Delivery:
    target: str        # "webhook" or "wecom"
    url: str           # redacted
    ok: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "url": self.url, "ok": self.ok, "error": self.error}


def wecom_markdown(title: str, lines: list[str]) -> dict[str, Any]:
    """A WeCom group-robot markdown message, cut to the robot's size limit."""
    content = f"**{title}**\n" + "\n".join(f"> {line}" for line in lines)
    raw = content.encode("utf-8")
    if len(raw) > WECOM_MAX_BYTES:
        content = raw[: WECOM_MAX_BYTES - 4].decode("utf-8", "ignore") + "\n..."
    return {"msgtype": "markdown", "markdown": {"content": content}}


def _post(target: str, url: str, payload: dict[str, Any], timeout: float,
          check_errcode: bool) -> Delivery:
    shown = redact_url(url)
    try:
        resp = requests.post(url, json=payload, timeout=timeout)
        if resp.status_code >= 300:
            raise RuntimeError(f"HTTP {resp.status_code}")
        if check_errcode:
            try:
                body = resp.json()
            except ValueError:
                raise RuntimeError("answer is not JSON") from None
            if not isinstance(body, dict) or body.get("errcode") != 0:
                errmsg = body.get("errmsg") if isinstance(body, dict) else None
                code = body.get("errcode") if isinstance(body, dict) else None
                raise RuntimeError(f"errcode {code}: {errmsg}")
    except (requests.RequestException, RuntimeError) as exc:
        reason = redact_text(f"{type(exc).__name__}: {exc}")
        log.warning("notification to %s %s failed: %s", target, shown, reason)
        return Delivery(target, shown, False, reason)
    log.info("notification sent to %s %s", target, shown)
    return Delivery(target, shown, True)


def send_notification(*, url: str | None, wecom: str | None, event: dict[str, Any],
                      title: str, lines: list[str], timeout: float = 10.0) -> list[Delivery]:
    """POST ``event`` as JSON to ``url`` and a markdown message to the WeCom robot ``wecom``.

    Never raises; returns one ``Delivery`` per configured target.
    """
    out: list[Delivery] = []
    if url:
        out.append(_post("webhook", url, event, timeout, check_errcode=False))
    if wecom:
        out.append(_post("wecom", wecom, wecom_markdown(title, lines), timeout,
                         check_errcode=True))
    return out
