#!/usr/bin/env bash
# Sends a few signed Shopify-style customer webhooks to the demo odoo-relayd
# (packaging/bootstrap.sh demo), once it listens, and shows what happened;
# then posts as Odoo's automation rules post, for the way out of Odoo.
set -u
dir=${1:-/tmp/odoo-relay-demo}
url=http://127.0.0.1:8080/hooks/shop
for _ in $(seq 100); do
	curl -fs http://127.0.0.1:8081/readyz >/dev/null 2>&1 && break
	sleep 0.1
done
# The store outlives a run (it is the point of it) while the emulator starts
# empty each time: webhook ids of this run's own keep a second run from
# being answered "duplicate" with nothing to show in the emulator.
run=$(date +%s)
send() { # send WEBHOOK_ID TOPIC BODY
	local sig
	sig=$(printf '%s' "$3" | openssl dgst -sha256 -hmac demo-secret -binary | base64)
	printf 'demo: POST %s (%s) -> ' "$1" "$2" >&2
	curl -s -X POST "$url" -H 'Content-Type: application/json' -H "X-Shopify-Topic: $2" \
		-H "X-Shopify-Webhook-Id: $1" -H "X-Shopify-Hmac-Sha256: $sig" --data-binary "$3" >&2
}
send demo-$run-1 customers/create '{"id":1001,"first_name":"Ada","last_name":"Lovelace","email":"ada@example.com"}'
send demo-$run-2 customers/create '{"id":1002,"first_name":"Grace","last_name":"Hopper","email":"grace@example.com"}'
send demo-$run-2 customers/create '{"id":1002,"first_name":"Grace","last_name":"Hopper","email":"grace@example.com"}'
send demo-$run-3 customers/update '{"id":1001,"first_name":"Ada","last_name":"King","email":"ada@example.com"}'
sleep 2
ports=$(cat "$dir/emulator.ports" 2>/dev/null)
printf 'demo: partners in the Odoo emulator now:\n' >&2
curl -s "http://127.0.0.1:${ports#* }/control/records?model=res.partner" | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    if any(x.startswith("odoo_relay.") for x in r.get("xmlids", [])):
        print("  ", r.get("xmlids"), r.get("name"), r.get("email"))' >&2
# On demand: another system asks the relay, which reads Odoo at that moment
# (the "customer" query of the demo configuration, with its token).
printf 'demo: GET /query/customer?email=ada@example.com -> ' >&2
curl -s -H 'X-Relay-Token: demo-query-token' \
	'http://127.0.0.1:8080/query/customer?email=ada@example.com' >&2
printf '\n' >&2
# An order by SKU: the products are Odoo's (seeded here, as a shop's catalogue
# would be), found by reference at delivery time; the order is confirmed once.
odoo="http://127.0.0.1:${ports%% *}/jsonrpc"
curl -s "$odoo" -H 'Content-Type: application/json' --data-binary '{"jsonrpc":"2.0","method":"call","id":1,"params":{"service":"object","method":"execute_kw","args":["demo",2,"admin","product.product","load",[["id","name","default_code","list_price"],[["demo.mug","Mug","MUG-1","9.50"],["demo.tee","T-shirt","TEE-1","19.00"]]],{}]}}' >/dev/null
order='{"id":5001,"name":"#5001","customer":{"id":1001},"line_items":[{"id":50011,"sku":"MUG-1","quantity":2,"price":9.5},{"id":50012,"sku":"TEE-1","quantity":1,"price":18.0}]}'
send demo-$run-4 orders/create "$order"
send demo-$run-5 orders/create "$order"   # a resend: the same lines, confirmed once
sleep 2
printf 'demo: sale orders in the Odoo emulator now:\n' >&2
for m in sale.order sale.order.line; do
	curl -s "http://127.0.0.1:${ports#* }/control/records?model=$m"
done | python3 -c '
import json, sys
dec = json.JSONDecoder(); text = sys.stdin.read(); at = 0; docs = []
while at < len(text):
    d, at = dec.raw_decode(text, at)
    docs.append(d)
    while at < len(text) and text[at].isspace():
        at += 1
orders, lines = docs
for o in orders:
    print("  ", o["name"], o.get("client_order_ref"), "state", o["state"])
    for l in lines:
        if l["order_id"] == o["id"]:
            print("     ", l["name"], "x", l["product_uom_qty"], "at", l["price_unit"])' >&2
# Out of Odoo: Odoo's "Send Webhook Notification" posts a record's fields to
# the relay (here for Ada, with the name she had before the update above).
# The relay answers at once, reads the record back from Odoo (confirm) and
# delivers its current values, signed, to demo-receiver.py on :8082, which
# prints it. A post about a record that does not exist (a change Odoo rolled
# back after posting) ends as a phantom: never delivered.
ada=$(curl -s "http://127.0.0.1:${ports#* }/control/records?model=res.partner" | python3 -c '
import json, sys
print(next((r["id"] for r in json.load(sys.stdin) if "odoo_relay.shop_customer_1001" in r.get("xmlids", [])), 0))')
odoo_post() { # odoo_post ID NAME
	printf 'demo: Odoo posts res.partner %s to /hooks/odoo/<token> -> ' "$1" >&2
	curl -s -X POST http://127.0.0.1:8080/hooks/odoo/demo-odoo-hook-token \
		-H 'Content-Type: application/json' --data-binary \
		"{\"_action\": \"Send Webhook Notification(#1)\", \"_id\": $1, \"_model\": \"res.partner\", \"email\": \"ada@example.com\", \"id\": $1, \"name\": \"$2\"}" >&2
	printf '\n' >&2
}
odoo_post "$ada" "Ada Lovelace"
odoo_post $((900000 + run % 100000)) "Nobody"
sleep 2
printf 'demo: %s\n' "$(curl -s http://127.0.0.1:8081/metrics | grep -E '^relay_(delivered|phantom)_total\{route="partners-out"' | tr '\n' ' ')" >&2
# Out of Odoo on a schedule: the orders-poll source reads sale.order every 2 s
# (what changed since its cursor) and sends each changed order, once, to the
# receiver: the order above, confirmed, went out without any webhook.
printf 'demo: polled out of Odoo: %s\n' "$(curl -s http://127.0.0.1:8081/metrics | grep -E '^relay_(poll_changes_total\{source="orders-poll"|delivered_total\{route="orders-out")' | tr '\n' ' ')" >&2
