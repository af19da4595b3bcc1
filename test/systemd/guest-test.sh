#!/bin/bash
# Runs inside an sdvm guest (Debian 12, systemd as PID 1, journald), as root,
# from /sdvm/in, which holds the odoo-relay .deb and the odoo-emulator binary
# (see run.sh). Installs the package as an administrator would and checks the
# service against the Odoo emulator: notify/status, delivery and dead letters
# in the journal, reloads good and bad, the watchdog, a stop with events
# queued, odoo-relayctl, socket activation and the sandbox score.
#
# Prints one PASS or FAIL line per check and ends with "N passed, N failed";
# exits 1 if anything failed. Every wait polls with a deadline.
set -u

IN=${SDVM_IN:-$PWD}
OUT=${SDVM_OUT:-/tmp}
UNIT=odoo-relay.service
CONF=/etc/odoo-relay/odoo-relay.json
STATE=/var/lib/odoo-relay
EMU_PORT=8069
EMU_CONTROL=8070
HOOK_URL=http://127.0.0.1:8080/hooks/shop
ADMIN_URL=http://127.0.0.1:9090
API_KEY=guest-api-key-7f3a
SHOP_SECRET=guest-shop-secret-19c2
MSGID_PREFIX=4f3c1f0e8d2a4b6c9e7f5a1b2c3d4e0
MSG_STARTED=${MSGID_PREFIX}1
MSG_STOPPED=${MSGID_PREFIX}2
MSG_DEAD=${MSGID_PREFIX}3
MSG_RELOADED=${MSGID_PREFIX}6
MSG_REFUSED=${MSGID_PREFIX}7

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
# check DESCRIPTION COMMAND...: PASS when the command succeeds.
check() {
	local what=$1; shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}
# wait_for SECONDS COMMAND...: poll every 0.1 s until the command succeeds.
wait_for() {
	local end=$(( $(date +%s%N) / 1000000 + $1 * 1000 )); shift
	while ! "$@"; do
		[ $(( $(date +%s%N) / 1000000 )) -ge $end ] && return 1
		sleep 0.1
	done
	return 0
}
prop() { systemctl show -P "$1" "$UNIT"; }
is_prop() { [ "$(prop "$1")" = "$2" ]; }
T0=$(date +%s)
note() { echo "---- [$(( $(date +%s) - T0 ))s] $*"; }

# ---- HTTP helpers --------------------------------------------------------
# hook ID WEBHOOK_ID TOPIC EMAIL: POST a Shopify-signed customer; prints
# "STATUS BODY".
hook() {
	local body sig
	body=$(printf '{"id":%s,"first_name":"Ada","last_name":"Lovelace%s","email":"%s"}' \
	       "$1" "$1" "$4")
	sig=$(printf %s "$body" | openssl dgst -sha256 -hmac "$SHOP_SECRET" -binary | base64)
	curl -s -o /tmp/hook.out -w '%{http_code}' --max-time 10 \
	     -H 'Content-Type: application/json' -H "X-Shopify-Hmac-Sha256: $sig" \
	     -H "X-Shopify-Webhook-Id: $2" -H "X-Shopify-Topic: $3" \
	     -H 'X-Shopify-Shop-Domain: guest.myshopify.com' \
	     --data-binary "$body" "$HOOK_URL"
	printf ' %s\n' "$(cat /tmp/hook.out 2>/dev/null)"
}
# event_id "STATUS BODY": the id from a 202 answer.
event_id() { sed -n 's/^202 .*"id":"\([0-9]*\)".*/\1/p' <<<"$1"; }
control() { # METHOD PATH [JSON]
	curl -s --max-time 10 -X "$1" -H 'Content-Type: application/json' \
	     ${3:+--data-binary "$3"} "http://127.0.0.1:$EMU_CONTROL$2"
}
# has_partner XMLID: the emulator holds a res.partner with this external id.
has_partner() {
	control GET '/control/records?model=res.partner' |
		python3 -c 'import json,sys; sys.exit(0 if any(("odoo_relay."+sys.argv[1]) in r.get("xmlids",[]) for r in json.load(sys.stdin)) else 1)' "$1"
}
metric() { # NAME: value of an unlabelled metric, or nothing
	curl -s --max-time 5 "$ADMIN_URL/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}
metric_is() { [ "$(metric "$1")" = "$2" ]; }

# journal_has FIELD=VALUE...: a message of the unit carries all these fields
# (read from journalctl -o json, as a log collector would).
journal_has() {
	journalctl -u "$UNIT" -o json --no-pager | python3 -c '
import json, sys
want = dict(a.split("=", 1) for a in sys.argv[1:])
for line in sys.stdin:
    e = json.loads(line)
    if all(str(e.get(k)) == v for k, v in want.items()):
        sys.exit(0)
sys.exit(1)' "$@"
}
journal_count() { # FIELD=VALUE...: how many messages of the unit match
	journalctl -u "$UNIT" -o json --no-pager | python3 -c '
import json, sys
want = dict(a.split("=", 1) for a in sys.argv[1:])
print(sum(1 for line in sys.stdin
          if all(str(json.loads(line).get(k)) == v for k, v in want.items())))' "$@"
}
journal_more() { # N FIELD=VALUE...: more than N messages of the unit match
	local n=$1; shift
	[ "$(journal_count "$@")" -gt "$n" ]
}
journal_grep() { journalctl -u "$UNIT" --no-pager -o cat | grep -q -- "$1"; }

write_config() { # EXTRA_ROUTE_JSON: the configuration, with an optional route
	cat > "$CONF.tmp" <<EOF
{
  "listen": ["127.0.0.1:8080"],
  "admin_listen": "127.0.0.1:9090",
  "state_dir": "$STATE",
  "map_size_mb": 64,
  "sources": {
    "shop": {
      "verify": { "scheme": "shopify", "secret_file": "shopify.secret" },
      "dedup": { "header": "X-Shopify-Webhook-Id" },
      "topic": { "header": "X-Shopify-Topic" },
      "lane": { "pointer": "/id" },
      "keep_headers": ["X-Shopify-Topic", "X-Shopify-Shop-Domain"],
      "require_json": true
    }
  },
  "odoo": {
    "url": "http://127.0.0.1:$EMU_PORT",
    "database": "guest",
    "login": "admin",
    "api_key_file": "odoo-api.key",
    "protocol": "jsonrpc"
  },
  "delivery": {
    "backoff": { "base_ms": 200, "cap_ms": 1000, "max_attempts": 5, "max_age_s": 3600 },
    "circuit_failures": 3,
    "probe_base_ms": 200,
    "probe_cap_ms": 1000,
    "drain_timeout_ms": 3000
  },
  "routes": [
    {
      "name": "shop-customers",
      "source": "shop",
      "topics": ["customers/create", "customers/update"],
      "operation": "upsert",
      "model": "res.partner",
      "external_id": "shop_customer_{/id}",
      "fields": {
        "name": "{/first_name} {/last_name}",
        "email": { "pointer": "/email" }
      }
    }$1
  ]
}
EOF
	mv "$CONF.tmp" "$CONF"
}
CONTACT_ROUTE=',
    {
      "name": "shop-contacts",
      "source": "shop",
      "topics": ["contacts/create"],
      "operation": "upsert",
      "model": "res.partner",
      "external_id": "shop_contact_{/id}",
      "fields": { "name": "{/first_name} {/last_name}" }
    }'

# ==== 1. installation ======================================================
note "install the package"
check "dpkg -i installs the package" dpkg -i "$IN"/odoo-relay_*.deb
check "odoo-relayd runs" /usr/sbin/odoo-relayd --version
verify=$(systemd-analyze verify --man=no odoo-relay.service odoo-relay.socket 2>&1)
check "systemd-analyze verify: the units load without a complaint${verify:+ ($verify)}" \
	test -z "$verify"
check "sysusers created the system user odoo-relay" getent passwd odoo-relay
check "the user has no login shell" \
	bash -c '[[ "$(getent passwd odoo-relay | cut -d: -f7)" == */nologin ]]'
check "tmpfiles created $STATE as odoo-relay:odoo-relay 0750" \
	bash -c "[ \"\$(stat -c '%U:%G %a' $STATE)\" = 'odoo-relay:odoo-relay 750' ]"
check "the example configuration is a conffile" \
	bash -c "dpkg-query -W -f='\${Conffiles}' odoo-relay | grep -q '$CONF'"
check "the service is enabled" systemctl is-enabled -q "$UNIT"
check "the socket is installed but not enabled" \
	bash -c '[ "$(systemctl is-enabled odoo-relay.socket)" = disabled ]'
# No API key yet: the start on installation was skipped, not failed.
check "fresh install: start skipped by its condition (no API key yet)" \
	bash -c '[ "$(systemctl show -P ConditionResult odoo-relay)" = no ] &&
	         [ "$(systemctl show -P ActiveState odoo-relay)" = inactive ] &&
	         [ "$(systemctl show -P NRestarts odoo-relay)" = 0 ]'
check "journal catalog installed (journalctl --list-catalog)" \
	bash -c "journalctl --list-catalog --no-pager | grep -q $MSG_DEAD"
check "man pages installed" \
	test -e /usr/share/man/man8/odoo-relayd.8.gz -a -e /usr/share/man/man5/odoo-relay.conf.5.gz
if [ -e /usr/sbin/odoo-relayctl ]; then
	check "odoo-relayctl(8) installed with odoo-relayctl" test -e /usr/share/man/man8/odoo-relayctl.8.gz
fi

# ==== 2. the emulator and the configuration ================================
note "start the Odoo emulator as a transient unit"
cp "$IN/odoo-emulator" /usr/local/bin/odoo-emulator
systemd-run --unit=odoo-emulator --quiet /usr/local/bin/odoo-emulator \
	--port $EMU_PORT --control-port $EMU_CONTROL --db guest --user admin:admin \
	--api-key "admin:$API_KEY" --version 18
check "emulator answers" wait_for 10 bash -c "curl -sf http://127.0.0.1:$EMU_CONTROL/control/stats >/dev/null"

note "configure: secrets root-only in /etc/odoo-relay, loaded as credentials"
umask 077
printf '%s\n' "$API_KEY" > /etc/odoo-relay/odoo-api.key
printf '%s\n' "$SHOP_SECRET" > /etc/odoo-relay/shopify.secret
umask 022
write_config ""
mkdir -p /etc/systemd/system/$UNIT.d
cat > /etc/systemd/system/$UNIT.d/credentials.conf <<'EOF'
[Service]
LoadCredential=shopify.secret:/etc/odoo-relay/shopify.secret
EOF
systemctl daemon-reload
check "odoo-relayd --check-config accepts it" /usr/sbin/odoo-relayd --check-config "$CONF"

# ==== 3. start, status =====================================================
note "start"
check "systemctl start succeeds" systemctl start "$UNIT"
check "ActiveState=active" is_prop ActiveState active
check "SubState=running" is_prop SubState running
check "StatusText says queued/in flight/dead/circuit" \
	wait_for 5 bash -c "systemctl show -P StatusText $UNIT | grep -q '^queued [0-9]*, in flight [0-9]*, dead [0-9]*, circuit closed'"
echo "     StatusText: $(prop StatusText)"
check "journal: started, with its MESSAGE_ID" wait_for 5 journal_has MESSAGE_ID=$MSG_STARTED
check "runs as odoo-relay" bash -c "[ \"\$(ps -o user= -p \$(systemctl show -P MainPID $UNIT))\" = odoo-relay ]"
creds=$(tr '\0' '\n' < /proc/"$(prop MainPID)"/environ | sed -n 's/^CREDENTIALS_DIRECTORY=//p')
check "secrets passed as credentials (\$CREDENTIALS_DIRECTORY=$creds)" \
	test -n "$creds" -a -s "$creds/odoo-api.key" -a -s "$creds/shopify.secret"
check "the service user cannot read the secret files themselves" \
	bash -c '! runuser -u odoo-relay -- cat /etc/odoo-relay/odoo-api.key >/dev/null 2>&1'
check "/readyz answers 200" bash -c "curl -sf $ADMIN_URL/readyz >/dev/null"
check "the store was created by the service" test -s $STATE/data.mdb
check "the store belongs to odoo-relay, not world-readable" \
	bash -c "[ \"\$(stat -c '%U %a' $STATE/data.mdb)\" = 'odoo-relay 640' ]"

# ==== 4. a delivered event and a dead letter in the journal ================
note "deliver a webhook"
r=$(hook 1 wh-1 customers/create ada1@example.com)
check "webhook accepted with 202 ($r)" test -n "$(event_id "$r")"
ok_id=$(event_id "$r")
check "event $ok_id delivered into Odoo" wait_for 15 has_partner shop_customer_1
check "journal -o json: EVENT_ID=$ok_id with SOURCE, ROUTE, ODOO_MODEL" \
	wait_for 5 journal_has EVENT_ID="$ok_id" SOURCE=shop ROUTE=shop-customers \
		ODOO_MODEL=res.partner TOPIC=customers/create LANE=1 PRIORITY=6
r2=$(hook 1 wh-1 customers/create ada1@example.com)
check "duplicate webhook id answered 200 duplicate" grep -q '^200 .*duplicate' <<<"$r2"

note "dead-letter one: the emulator raises ValidationError for this email"
control POST /control/fault '{"mode":"validation","field":"email","value":"bad@example.com","message":"Invalid email address"}' >/dev/null
r=$(hook 2 wh-2 customers/create bad@example.com)
dead_id=$(event_id "$r")
check "webhook for the dead letter accepted ($r)" test -n "$dead_id"
check "journal -o json: EVENT_ID=$dead_id dead-lettered, MESSAGE_ID, PRIORITY=3" \
	wait_for 15 journal_has EVENT_ID="$dead_id" MESSAGE_ID=$MSG_DEAD PRIORITY=3 SOURCE=shop \
		ROUTE=shop-customers
check "dead letter's message carries Odoo's error" \
	bash -c "journalctl -u $UNIT -o cat EVENT_ID=$dead_id MESSAGE_ID=$MSG_DEAD | grep -q 'Invalid email address'"
check "journalctl -x explains it from the catalog" \
	bash -c "journalctl -x -u $UNIT --no-pager MESSAGE_ID=$MSG_DEAD | grep -q 'odoo-relayctl dead show $dead_id'"
check "journalctl -p warning shows the dead letter" \
	bash -c "journalctl -u $UNIT -p warning -o cat --no-pager | grep -q 'event $dead_id dead-lettered'"
check "journalctl -p warning leaves routine deliveries out" \
	bash -c "! journalctl -u $UNIT -p warning -o cat --no-pager | grep -q 'event $ok_id delivered'"
check "StatusText counts the dead letter" \
	wait_for 5 bash -c "systemctl show -P StatusText $UNIT | grep -q 'dead 1,'"
control POST /control/fault '{"mode":"clear_validation"}' >/dev/null

# ==== 5. reload that changes a route =======================================
note "reload with a new route"
pid=$(prop MainPID)
n_reloaded=$(journal_count MESSAGE_ID=$MSG_RELOADED)
r=$(hook 3 wh-3 contacts/create c3@example.com)
unrouted_id=$(event_id "$r")
check "before the reload, topic contacts/create has no route: event $unrouted_id dead-lettered" \
	wait_for 15 journal_has EVENT_ID="$unrouted_id" MESSAGE_ID=$MSG_DEAD
write_config "$CONTACT_ROUTE"
check "systemctl reload succeeds" systemctl reload "$UNIT"
check "journal: configuration reloaded, with its MESSAGE_ID" \
	wait_for 5 journal_more "$n_reloaded" MESSAGE_ID=$MSG_RELOADED
check "same process after reload (MainPID $pid)" is_prop MainPID "$pid"
check "active after reload" is_prop ActiveState active
r=$(hook 4 wh-4 contacts/create c4@example.com)
check "event on the new route accepted ($r)" test -n "$(event_id "$r")"
check "event on the new route delivered" wait_for 15 has_partner shop_contact_4

# ==== 6. reload with a broken file =========================================
note "reload with a broken configuration"
cp "$CONF" /tmp/good.json
n_refused=$(journal_count MESSAGE_ID=$MSG_REFUSED)
sed -i 's/"admin_listen"/"admin_lisen"/' "$CONF"
systemctl reload "$UNIT"
check "journal: reload refused, with its MESSAGE_ID and PRIORITY=3" \
	wait_for 5 journal_more "$n_refused" MESSAGE_ID=$MSG_REFUSED PRIORITY=3
check "refusal names file:line:column" \
	bash -c "journalctl -u $UNIT -o cat --no-pager MESSAGE_ID=$MSG_REFUSED | grep -q 'odoo-relay.json:[0-9]*:[0-9]*: unknown key'"
check "still active after the refused reload" is_prop ActiveState active
check "still the same process" is_prop MainPID "$pid"
r=$(hook 5 wh-5 contacts/create c5@example.com)
check "old configuration kept: the new route still delivers" wait_for 15 has_partner shop_contact_5
cp /tmp/good.json "$CONF"
systemctl reload "$UNIT"

# ==== 7. the watchdog ======================================================
note "watchdog: stall the event loop with SIGSTOP (WatchdogSec=3s for this test)"
cat > /etc/systemd/system/$UNIT.d/watchdog.conf <<'EOF'
[Service]
WatchdogSec=3s
RestartSec=1s
EOF
systemctl daemon-reload
systemctl reset-failed "$UNIT"
systemctl restart "$UNIT"
check "WatchdogUSec=3s in effect" is_prop WatchdogUSec 3s
restarts=$(prop NRestarts)
pid=$(prop MainPID)
kill -STOP "$pid"
check "stalled service restarted by the watchdog" \
	wait_for 40 bash -c "[ \$(systemctl show -P NRestarts $UNIT) -gt $restarts ] &&
	                     [ \"\$(systemctl show -P ActiveState $UNIT)\" = active ] &&
	                     [ \"\$(systemctl show -P MainPID $UNIT)\" != $pid ]"
check "journal: watchdog timeout, result 'watchdog'" \
	bash -c "journalctl -u $UNIT --no-pager -o cat | grep -q \"Failed with result 'watchdog'\""
echo "     NRestarts: $restarts -> $(prop NRestarts)"
rm /etc/systemd/system/$UNIT.d/watchdog.conf
systemctl daemon-reload
systemctl reset-failed "$UNIT"
systemctl restart "$UNIT"
check "back to the shipped WatchdogSec=30s" is_prop WatchdogUSec 30s

# ==== 8. stop with events queued, start, nothing lost ======================
note "stop with events queued (Odoo down), start again"
control POST /control/fault '{"mode":"down"}' >/dev/null
queued_ok=1
for i in 11 12 13 14 15; do
	r=$(hook $i wh-$i customers/create c$i@example.com)
	[ -n "$(event_id "$r")" ] || queued_ok=0
done
check "5 webhooks accepted while Odoo is down" test $queued_ok = 1
check "relay_queue_depth is 5" wait_for 10 metric_is relay_queue_depth 5
check "StatusText shows the backlog" \
	wait_for 5 bash -c "systemctl show -P StatusText $UNIT | grep -q '^queued 5,'"
n_stopped=$(journal_count MESSAGE_ID=$MSG_STOPPED)
check "systemctl stop succeeds" systemctl stop "$UNIT"
check "stopped cleanly (Result=success, ExecMainStatus=0)" \
	bash -c "[ \"\$(systemctl show -P Result $UNIT)\" = success ] && [ \"\$(systemctl show -P ExecMainStatus $UNIT)\" = 0 ]"
check "journal: stopped, with its MESSAGE_ID" \
	wait_for 5 journal_more "$n_stopped" MESSAGE_ID=$MSG_STOPPED
if [ -x /usr/sbin/odoo-relayctl ]; then
	ctl_status=$(odoo-relayctl --config "$CONF" status 2>&1)
	echo "$ctl_status" | sed 's/^/     odoo-relayctl: /'
	check "odoo-relayctl status while stopped (root, packaged config)" test -n "$ctl_status"
fi
systemctl reset-failed "$UNIT"
check "systemctl start succeeds" systemctl start "$UNIT"
check "after the restart relay_queue_depth is still 5" wait_for 10 metric_is relay_queue_depth 5
control POST /control/fault '{"mode":"none"}' >/dev/null
all_there() { for i in 11 12 13 14 15; do has_partner shop_customer_$i || return 1; done; }
check "all 5 delivered once Odoo is back" wait_for 30 all_there
check "queue empty again" wait_for 10 metric_is relay_queue_depth 0

# ==== 9. odoo-relayctl as the packaged user would use it ===================
note "odoo-relayctl"
if [ -x /usr/sbin/odoo-relayctl ]; then
	check "odoo-relayctl --config $CONF status (service running)" \
		odoo-relayctl --config "$CONF" status
	check "odoo-relayctl dead list shows event $dead_id" \
		bash -c "odoo-relayctl --config $CONF dead list | grep -qw $dead_id"
	check "as the service user, with --state-dir (the secrets are root's)" \
		runuser -u odoo-relay -- odoo-relayctl --state-dir "$STATE" status
	# The ValidationError is gone (clear_validation above): replaying the
	# dead letter now delivers it, with the service running.
	check "odoo-relayctl dead replay $dead_id" odoo-relayctl --config "$CONF" dead replay "$dead_id"
	check "the replayed event is delivered" wait_for 15 has_partner shop_customer_2
	check "odoo-relayctl leaves the store owned by odoo-relay" \
		bash -c "[ -z \"\$(find $STATE ! -user odoo-relay)\" ]"
else
	echo "SKIP: odoo-relayctl is not in the package"
fi

# ==== 10. socket activation ================================================
note "socket activation"
systemctl stop "$UNIT"
check "systemctl enable --now odoo-relay.socket" systemctl enable --now odoo-relay.socket
systemctl reset-failed "$UNIT"
r=$(hook 21 wh-21 customers/create c21@example.com)
check "a webhook to the socket starts the service and is accepted ($r)" test -n "$(event_id "$r")"
check "service active, started by the socket" is_prop ActiveState active
check "journal: served the socket passed by systemd" journal_grep "socket(s) passed by systemd"
check "delivered" wait_for 15 has_partner shop_customer_21
systemctl disable --now odoo-relay.socket >/dev/null 2>&1
systemctl stop "$UNIT"

# ==== 11. what the log must not hold =====================================
note "secrets and payloads stay out of the journal"
journalctl -u "$UNIT" -o json --no-pager > /tmp/unit-journal.json
check "no secret in the unit's journal" \
	bash -c "! grep -q -e '$API_KEY' -e '$SHOP_SECRET' /tmp/unit-journal.json"
check "no payload in the unit's journal (an email address sent in one)" \
	bash -c "! grep -q 'ada1@example.com' /tmp/unit-journal.json"

# ==== 12. sandbox ==========================================================
note "systemd-analyze security"
systemd-analyze security --no-pager "$UNIT" > "$OUT/security.txt" 2>&1
score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$OUT/security.txt")
echo "     overall exposure level: ${score:-?}"
check "systemd-analyze security scores ${score:-?} <= 2.0" \
	awk -v s="${score:-99}" 'BEGIN { exit !(s <= 2.0) }'

# ==== 13. removal ==========================================================
note "remove the package"
systemctl start "$UNIT"
check "dpkg -r stops the service" \
	bash -c "dpkg -r odoo-relay >/dev/null && [ \"\$(systemctl show -P ActiveState $UNIT)\" != active ]"

journalctl -u "$UNIT" -o json --no-pager > "$OUT/odoo-relay.journal.json" 2>/dev/null
echo "$passed passed, $failed failed"
[ $failed = 0 ]
