#!/usr/bin/env python3
"""Turns a payment provider's callback into a roost payment report (docs/billing.md).

roost never holds card data: your payment provider charges the customer and calls you back; this
bridge maps that callback to `POST /v1/billing/payments` on roost, signed with the Standard Webhooks
scheme and roost's `billing_intake_secret`. Only the Python standard library is used.

    ROOST_URL=http://127.0.0.1:8080 ROOST_BILLING_INTAKE_SECRET=whsec_… BRIDGE_TOKEN=… \\
        python3 payment_bridge.py            # serves on :8099; point the provider at /callback?token=…
    python3 payment_bridge.py --once < callback.json   # one callback from stdin, prints roost's answer

The callback shape below is Stripe's PaymentIntent event; when you create the payment, put roost's
`pur_…` (a purchase) or `bill_…` (an invoice) in its metadata as `roost_purchase_id` or
`roost_invoice_id`, and charge exactly the purchase's `amount` or the invoice's `amount_due`.
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

ROOST_URL = os.environ.get("ROOST_URL", "http://127.0.0.1:8080").rstrip("/")
SECRET = os.environ.get("ROOST_BILLING_INTAKE_SECRET", "")
BRIDGE_TOKEN = os.environ.get("BRIDGE_TOKEN", "")

OUTCOMES = {"payment_intent.succeeded": "succeeded", "payment_intent.payment_failed": "failed"}


def to_report(event):
    """The roost report for a provider event, with the id to send it under; None to ignore it."""
    status = OUTCOMES.get(event.get("type"))
    obj = event.get("data", {}).get("object", {})
    meta = obj.get("metadata") or {}
    if status is None:
        return None
    report = {
        "status": status,
        "amount": int(obj["amount"]),
        "currency": str(obj["currency"]).upper(),
        "reference": str(obj["id"]),
    }
    if "roost_purchase_id" in meta:
        report["purchase_id"] = meta["roost_purchase_id"]
    elif "roost_invoice_id" in meta:
        report["invoice_id"] = meta["roost_invoice_id"]
    else:
        return None
    # The provider's event id: a retried callback is the same report, which roost answers once.
    return report, str(event["id"])


def send(report, msg_id):
    """Signs and posts one report; returns (status, body)."""
    body = json.dumps(report, separators=(",", ":"))
    ts = str(int(time.time()))
    key = base64.b64decode(SECRET[len("whsec_"):])
    mac = hmac.new(key, f"{msg_id}.{ts}.{body}".encode(), hashlib.sha256).digest()
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": ts,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }
    req = urllib.request.Request(ROOST_URL + "/v1/billing/payments", data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def handle(event):
    mapped = to_report(event)
    if mapped is None:
        return 200, '{"ignored": true}'
    return send(*mapped)


class Callback(BaseHTTPRequestHandler):
    def do_POST(self):
        # Check the provider's own signature here too (provider-specific); at least a shared token.
        if not BRIDGE_TOKEN or not hmac.compare_digest(self.path, f"/callback?token={BRIDGE_TOKEN}"):
            self.send_response(403)
            self.end_headers()
            return
        length = int(self.headers.get("content-length", "0"))
        status, body = handle(json.loads(self.rfile.read(length)))
        # 5xx from roost: answer 5xx so the provider retries; anything else is final.
        self.send_response(502 if status >= 500 else 200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())


def main():
    if not SECRET.startswith("whsec_"):
        sys.exit("set ROOST_BILLING_INTAKE_SECRET to roost's billing_intake_secret (whsec_…)")
    if "--once" in sys.argv:
        status, body = handle(json.load(sys.stdin))
        print(status, body)
        sys.exit(0 if status < 300 else 1)
    HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8099"))), Callback).serve_forever()


if __name__ == "__main__":
    main()
