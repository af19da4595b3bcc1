"""The benchmarks' webhook: a Shopify customers/create body of 1024 bytes
with its HMAC, and a new X-Shopify-Webhook-Id per request, as a wrk script.
The same body and headers as the Node/BullMQ peer's bench/gen-lua.js, so
that odoo-relayd, the peer and nginx answer the same requests."""
import base64
import hashlib
import hmac
import json

SECRET = b"peer-test-secret"


def customer(cid):
    return {
        "id": cid, "email": "customer%d@example.com" % cid,
        "created_at": "2025-01-15T10:00:00-05:00", "updated_at": "2025-01-15T10:00:00-05:00",
        "first_name": "Peer", "last_name": "Customer %d" % cid, "orders_count": 0,
        "state": "enabled", "total_spent": "0.00", "last_order_id": None, "note": "x" * 188,
        "verified_email": True, "multipass_identifier": None, "tax_exempt": False,
        "tags": "bench,peer", "currency": "EUR", "phone": "+32470000000",
        "addresses": [{
            "id": 9000 + cid, "customer_id": cid, "first_name": "Peer",
            "last_name": "Customer %d" % cid, "company": None, "address1": "1 Rue de la Loi",
            "address2": None, "city": "Bruxelles", "province": None, "country": "Belgium",
            "zip": "1000", "phone": None, "name": "Peer Customer %d" % cid,
            "province_code": None, "country_code": "BE", "country_name": "Belgium",
            "default": True}],
        "admin_graphql_api_id": "gid://shopify/Customer/%d" % cid,
    }


def lua_script(path="/hooks/shopify"):
    body = json.dumps(customer(7064055069), separators=(",", ":"))
    sig = base64.b64encode(hmac.new(SECRET, body.encode(), hashlib.sha256).digest()).decode()
    return """-- the benchmarks' Shopify webhook, body %d bytes
wrk.method = "POST"
wrk.path = %s
wrk.body = %s
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Shopify-Topic"] = "customers/create"
wrk.headers["X-Shopify-Shop-Domain"] = "peer-bench.myshopify.com"
wrk.headers["X-Shopify-Hmac-Sha256"] = %s
local nthreads = 0
function setup(thread) nthreads = nthreads + 1; thread:set("tid", nthreads) end
local n = 0
local prefix
function init(args) prefix = string.format("%%d-%%d-%%d-", os.time(), tid, math.random(1, 1000000000)) end
function request()
  n = n + 1
  wrk.headers["X-Shopify-Webhook-Id"] = prefix .. n
  return wrk.format()
end
""" % (len(body), json.dumps(path), json.dumps(body), json.dumps(sig))


def source_conf(secret_file="shop.secret", parse=True):
    """The relay's source for it, as side_by_side.sh configures it. With
    parse=False, one that never parses the body: no lane (it came from the
    body's /id) and no JSON check, to measure what the parse costs."""
    conf = {"verify": {"scheme": "shopify", "secret_file": secret_file},
            "dedup": {"header": "X-Shopify-Webhook-Id"}, "topic": {"header": "X-Shopify-Topic"},
            "lane": {"pointer": "/id"},
            "keep_headers": ["X-Shopify-Topic", "X-Shopify-Shop-Domain"], "require_json": True}
    if not parse:
        del conf["lane"]
        conf["require_json"] = False
    return conf


if __name__ == "__main__":
    print(lua_script(), end="")
