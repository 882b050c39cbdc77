"""TEST DOUBLE: a requests transport adapter that lets cos-python-sdk-v5 talk to moto.

This is not COS. It exists so the real SDK code path of ``drkit.storage.cos`` (request
building, header mapping, XML parsing, error parsing) runs end to end over HTTP against the
local moto S3 server, which speaks S3 and not COS's dialect. It translates, per request:

* the URL: the SDK addresses ``http://127.0.0.1:PORT/key`` with a virtual-host ``Host:
  bucket-appid.cos.region.myqcloud.com`` header; the adapter makes it path-style
  ``/bucket-appid/key`` and sets ``Host`` to the real server;
* ``x-cos-*`` request headers to ``x-amz-*`` (and ``x-amz-*`` back to ``x-cos-*`` on
  responses); ``x-cos-forbid-overwrite: true`` becomes ``If-None-Match: *`` (moto honours
  it on PutObject and CompleteMultipartUpload); ``x-cos-copy-source`` (``host/key``)
  becomes ``/bucket/key``;
* COS's ``ARCHIVE`` storage class to S3's ``GLACIER`` and back (``DEEP_ARCHIVE`` and
  ``STANDARD_IA`` have the same names), in headers and in XML bodies;
* the ``q-sign-algorithm=...`` Authorization header (moto answers 500 to it) to a dummy
  SigV4 header that keeps the caller's SecretId as the access key;
* empty ``marker``-style query parameters are dropped (moto mishandles empty markers);
* S3 error bodies get the ``<Resource>`` element the SDK's error parser requires.

What this cannot show: COS's signature checks, COS-only features (``x-cos-hash-crc64ecma``,
bucket-level object lock semantics beyond what S3 Object Lock does), or COS's real error
codes where they differ from S3's. Those run only against real COS (DRKIT_TEST_COS_URL).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest, Response

_EMPTY_DROPPED = {
    "marker",
    "key-marker",
    "version-id-marker",
    "upload-id-marker",
    "delimiter",
    "prefix",
    "continuation-token",
    "part-number-marker",
}
_CLASS_TO_S3 = {"ARCHIVE": "GLACIER"}
_CLASS_TO_COS = {"GLACIER": "ARCHIVE"}
_AK = re.compile(r"q-ak=([^&]+)")


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _class_to_s3(value: str) -> str:
    return _CLASS_TO_S3.get(value, value)


class COSToS3Adapter(HTTPAdapter):
    """Translate COS requests to S3 for moto, and S3 responses back to COS."""

    def __init__(self, region: str = "us-east-1") -> None:
        super().__init__()
        self.region = region
        #: Every URL sent, for tests that want to prove a request was (not) made.
        self.requests_seen: list[str] = []

    def send(  # type: ignore[override]
        self, request: PreparedRequest, *args: Any, **kwargs: Any
    ) -> Response:
        self._rewrite_request(request)
        self.requests_seen.append(f"{request.method} {request.url}")
        response = super().send(request, *args, **kwargs)
        return self._rewrite_response(response)

    # -- request ---------------------------------------------------------------------------
    def _rewrite_request(self, request: PreparedRequest) -> None:
        assert request.url is not None
        parts = urlsplit(request.url)
        # The SDK hands requests its header values as bytes; work on text.
        headers = {_text(k): _text(v) for k, v in request.headers.items()}
        host = headers.get("Host") or parts.netloc
        bucket = host.split(".", 1)[0] if host != parts.netloc else ""
        path = parts.path
        if bucket:
            path = f"/{bucket}{path}" if path != "/" else f"/{bucket}"
        query = [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not (v == "" and k in _EMPTY_DROPPED)
        ]
        # Flags such as ?versioning or ?restore must stay bare: moto keys on their presence.
        query_text = "&".join(
            f"{quote(k, safe='')}" if v == "" else urlencode({k: v}, quote_via=quote)
            for k, v in query
        )
        request.url = urlunsplit((parts.scheme, parts.netloc, path, query_text, ""))

        new_headers: dict[str, str] = {}
        auth = str(headers.get("Authorization") or "")
        for name, value in headers.items():
            low = name.lower()
            if low in ("host", "authorization"):
                continue
            if low == "x-cos-forbid-overwrite":
                if str(value).lower() == "true":
                    new_headers["If-None-Match"] = "*"
                continue
            if low == "x-cos-copy-source":
                src = urlsplit("//" + str(value))
                src_bucket = src.netloc.split(".", 1)[0]
                new_headers["x-amz-copy-source"] = f"/{src_bucket}{src.path}"
                continue
            if low == "x-cos-storage-class":
                new_headers["x-amz-storage-class"] = _class_to_s3(str(value))
                continue
            if low.startswith("x-cos-"):
                new_headers["x-amz-" + name[len("x-cos-") :]] = value
                continue
            new_headers[name] = value
        new_headers["Host"] = parts.netloc
        match = _AK.search(auth)
        access_key = match.group(1) if match else "AKIADRKITTEST0000000"
        new_headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={access_key}/20260101/{self.region}/s3/aws4_request,"
            " SignedHeaders=host, Signature=" + "0" * 64
        )
        new_headers.setdefault("x-amz-date", "20260101T000000Z")
        new_headers.setdefault("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        request.headers = requests.structures.CaseInsensitiveDict(new_headers)
        if isinstance(request.body, bytes) and b"<RestoreRequest>" in request.body:
            # COS nests the tier under CASJobParameters; S3 under GlacierJobParameters.
            request.body = request.body.replace(b"CASJobParameters", b"GlacierJobParameters")
            request.headers["Content-Length"] = str(len(request.body))

    # -- response --------------------------------------------------------------------------
    def _rewrite_response(self, response: Response) -> Response:
        headers: Mapping[str, str] = response.headers
        new: dict[str, str] = {}
        for name, value in headers.items():
            low = name.lower()
            if low == "x-amz-storage-class":
                new["x-cos-storage-class"] = _CLASS_TO_COS.get(value, value)
            elif low.startswith("x-amz-"):
                new["x-cos-" + name[len("x-amz-") :]] = value
            else:
                new[name] = value
        response.headers = requests.structures.CaseInsensitiveDict(new)
        content_type = new.get("Content-Type", "")
        if response.status_code >= 400 or "xml" in content_type:
            body = response.content
            if body.lstrip().startswith(b"<"):
                for s3_class, cos_class in _CLASS_TO_COS.items():
                    body = body.replace(
                        f"<StorageClass>{s3_class}</StorageClass>".encode(),
                        f"<StorageClass>{cos_class}</StorageClass>".encode(),
                    )
                if response.status_code >= 400 and b"<Resource>" not in body:
                    resource = f"<Resource>{urlsplit(response.url or '').path}</Resource>"
                    body = body.replace(b"</Error>", resource.encode() + b"</Error>")
                    if b"<RequestId>" not in body:
                        body = body.replace(
                            b"</Error>", b"<RequestId>moto</RequestId></Error>"
                        )
                response._content = body
                if "Content-Length" in response.headers:
                    response.headers["Content-Length"] = str(len(body))
        return response


def adapter_session(region: str = "us-east-1") -> requests.Session:
    """A requests.Session whose http:// traffic goes through ``COSToS3Adapter``.

    Assign ``COSStore.session_factory = adapter_session`` (the ``cos_adapter`` fixture does
    it) to make every COSStore talk to the moto server.
    """
    session = requests.Session()
    adapter = COSToS3Adapter(region)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
