"""Verifies webhooks captured by hookd's dialect tests with libraries hookd did
not write: standardwebhooks, svix, stripe, PyJWT and the standard library's hmac.

Usage: python verify_webhooks.py CASES.json
Each case: {"id", "scheme", "secret", "headers": {...}, "body_b64", and per
scheme "kid" / "header" / "encoding"}. Exits non-zero on the first failure.
"""
import base64
import hashlib
import hmac
import json
import sys

import jwt
import stripe
from standardwebhooks.webhooks import Webhook as StandardWebhook
from svix.webhooks import Webhook as SvixWebhook


def verify(case):
    body = base64.b64decode(case["body_b64"])
    headers = case["headers"]
    scheme = case["scheme"]
    secret = case["secret"]
    if scheme == "standard-webhooks":
        StandardWebhook(secret).verify(body, headers)
        SvixWebhook(secret).verify(body, headers)
    elif scheme == "svix":
        assert "svix-signature" in headers, "svix scheme must use svix-* headers"
        SvixWebhook(secret).verify(body, headers)
    elif scheme == "stripe":
        event = stripe.Webhook.construct_event(body.decode(), headers["stripe-signature"], secret)
        assert event is not None
    elif scheme == "jwt-hs256":
        header = jwt.get_unverified_header(body)
        assert header["kid"] == case["kid"], f"kid {header['kid']!r} != {case['kid']!r}"
        claims = jwt.decode(body, secret, algorithms=["HS256"])
        assert isinstance(claims["events"], list) and claims["events"], claims
    elif scheme == "hmac-sha256":
        digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        want = base64.b64encode(digest).decode() if case.get("encoding", "base64") == "base64" else digest.hex()
        got = headers[case["header"]]
        assert hmac.compare_digest(want, got), f"{case['header']}: {got!r} != {want!r}"
    else:
        raise AssertionError(f"unknown scheme {scheme}")


def main():
    cases = json.load(open(sys.argv[1]))
    for case in cases:
        try:
            verify(case)
        except Exception as e:  # noqa: BLE001 - report which case failed and why
            print(f"FAILED {case['id']}: {type(e).__name__}: {e}")
            sys.exit(1)
        print(f"verified {case['id']} ({case['scheme']})")
    print(f"{len(cases)} verified")


if __name__ == "__main__":
    main()
