#!/bin/sh
# NATS authentication and TLS against nats-servers configured for each
# method (token, user and password, a password in the url, nkey, TLS with
# a CA and client certificates made here with openssl, verify: true),
# each started by this test on 127.0.0.1, a free port and a temporary
# store, and stopped by PID.  With the right secret mandrilld restarts
# what mandrill-publish -c (same file, same secret) sends; with a wrong or
# no secret it exits 69 in one line; a secret file or a configuration
# file holding a secret that others may read is refused (78); and no
# secret appears in any log line, in -t output or in the status dump.
#
# creds (a JWT credentials file) needs an operator, account and user JWT
# set-up that nats-server cannot make by itself: only its file checks
# (missing, open to others, malformed) are tested here.
. "$(dirname "$0")/lib.sh"

NKEY_GEN=$top_builddir/tests/nkey_gen
SECRETS=$T/secrets.txt		# every secret of the run, one a line
: >"$SECRETS"

# server NAME CONFIG-TEXT: (re)start nats-server with this configuration
server() {
	[ -n "$NATS_PID" ] && stop_nats
	rm -rf "$T/js" "$T/state" "$LOG"
	printf '%s\n' "$2" >"$T/nats-$1.conf"
	NATS_PORT=
	NATS_ARGS="-c $T/nats-$1.conf"
	start_nats
	NATS_ARGS=
}

# private_file NAME TEXT: a mode-600 file holding TEXT
private_file() {
	printf '%s\n' "$2" >"$T/$1"
	chmod 600 "$T/$1"
}

# secret_file NAME VALUE: a private file holding VALUE, remembered
secret_file() {
	private_file "$1" "$2"
	printf '%s\n' "$2" >>"$SECRETS"
}

# works WHAT SOURCE-LINES: mandrilld connects with them and restarts 5
# hosts that mandrill-publish -c publishes with the same file
works() {
	rm -rf "$T/state"
	nats_conf "$2" ""
	chmod 600 "$T/mandrill.conf"
	start_mandrilld
	check_cmd "$1: mandrilld connects" wait_for "nats: consuming" 15
	seq 1 5 | sed "s/^/$(echo "$1" | tr -c 'a-zA-Z0-9\n' -)-/" | "$PUBLISH" -q -c "$T/mandrill.conf" -f -
	check "$1: mandrill-publish -c authenticates alike" "$?" 0
	final 5 30 || fail "$1: not final within 30 s"
	check "$1: every message restarted" \
	    "$(sql "SELECT count(*) FROM messages WHERE state = 'restarted'")" 5
	kill -USR2 "$PID"
	wait_for "nats: connected to" 5
	stop_mandrilld "$1"
	cat "$LOG" >>"$T/all.log"
}

# refused WHAT SOURCE-LINES: mandrilld exits 69, one line says why
refused() {
	nats_conf "$2" ""
	chmod 600 "$T/mandrill.conf"
	"$MANDRILLD" -f -c "$T/mandrill.conf" >"$LOG" 2>&1
	check "$1: exit 69" "$?" 69
	check "$1: one line says why" "$(grep -c 'source nats:' "$LOG")" 1
	cat "$LOG" >>"$T/all.log"
}

# bad_conf WHAT PATTERN SOURCE-LINES: -t and a start exit 78, one line
bad_conf() {
	nats_conf "$3" ""
	[ -n "${CONF_MODE:-}" ] && chmod "$CONF_MODE" "$T/mandrill.conf"
	"$MANDRILLD" -t -c "$T/mandrill.conf" >"$T/t.out" 2>&1
	check "$1: -t exits 78" "$?" 78
	check "$1: in one line that says so" \
	    "$(wc -l <"$T/t.out") $(grep -c -- "$2" "$T/t.out")" "1 1"
	"$MANDRILLD" -f -c "$T/mandrill.conf" >"$LOG" 2>&1
	check "$1: a start exits 78" "$?" 78
	cat "$T/t.out" "$LOG" >>"$T/all.log"
}

# --- token ---------------------------------------------------------------------
token=tok-$$-$(date +%N)
server token "authorization { token: \"$token\" }"
secret_file token "$token"
works token "token_file = $T/token"
secret_file wrong-token "not-$token"
refused "wrong token" "token_file = $T/wrong-token"
refused "no token" ""
check "no token: the server's refusal is the reason" \
    "$(grep -c 'source nats: cannot connect to .*uthoriz' "$LOG")" 1
chmod 644 "$T/token"
bad_conf "token file readable by others" \
    "token_file $T/token: holds a secret and others may read" \
    "token_file = $T/token"
chmod 600 "$T/token"
bad_conf "token file missing" "token_file $T/gone: No such file" \
    "token_file = $T/gone"

# --- a reload reads the files again ----------------------------------------------
nats_conf "token_file = $T/token" ""
start_mandrilld
wait_for "nats: consuming" 15
chmod 640 "$T/token"
kill -HUP "$PID"
check_cmd "reload: a token file opened to others fails the reload" \
    wait_for 'reload failed, configuration unchanged: .*\[source\] token_file .*others may read' 10
chmod 600 "$T/token"
secret_file token "new-$token"
kill -HUP "$PID"
check_cmd "reload: a changed token is refused, not half applied" \
    wait_for 'token_file (or the file it names) changed' 10
stop_mandrilld "reload"
cat "$LOG" >>"$T/all.log"

# --- user and password ------------------------------------------------------------
pw=pw-$$-$(date +%N)
server userpw "authorization { users = [ { user: mandrill, password: \"$pw\" } ] }"
secret_file password "$pw"
works "user and password" "user = mandrill
password_file = $T/password"
secret_file wrong-password "x$pw"
refused "wrong password" "user = mandrill
password_file = $T/wrong-password"
refused "no password" ""
bad_conf "user without password_file" "user and password_file go together" \
    "user = mandrill"

# A password in the url: refused in a file others may read, redacted in
# every line when the file is private.
printf '%s\n' "$pw" >>"$SECRETS"
URL="nats://127.0.0.1:1, nats://mandrill:$pw@127.0.0.1:$NATS_PORT"
works "password in the url" ""
check "password in the url: the log shows it redacted" \
    "$(grep -c "nats://mandrill:\*\*\*@127.0.0.1:$NATS_PORT" "$LOG" |
        awk '{ print ($1 >= 2) }')" 1
URL="nats://mandrill:$pw@127.0.0.1:$NATS_PORT"
CONF_MODE=644
bad_conf "password in the url, file readable by others" \
    "url holds a password or token and others may read the file" ""
CONF_MODE=640
bad_conf "password in the url, file readable by its group" \
    "url holds a password or token and others may read the file" ""
CONF_MODE=
nats_conf "" ""
chmod 600 "$T/mandrill.conf"
"$MANDRILLD" -t -c "$T/mandrill.conf" >"$T/t.out" 2>&1
check "password in the url, private file: -t exits 0" "$?" 0
cat "$T/t.out" >>"$T/all.log"
URL="nats://mandrill:$pw@127.0.0.1:$NATS_PORT,nats://h:0"
nats_conf "" ""
chmod 600 "$T/mandrill.conf"
"$MANDRILLD" -t -c "$T/mandrill.conf" >>"$T/all.log" 2>&1
check "password in the url, a bad element: -t exits 78" "$?" 78
URL="nats://mandrill:x$pw@127.0.0.1:$NATS_PORT"
refused "wrong password in the url" ""
URL=

# --- nkey --------------------------------------------------------------------------
"$NKEY_GEN" >"$T/pair"
check "nkey_gen makes a seed and a public key" \
    "$(sed -n 1p "$T/pair" | cut -c1-2) $(sed -n 2p "$T/pair" | cut -c1)" "SU U"
seed=$(sed -n 1p "$T/pair")
pub=$(sed -n 2p "$T/pair")
server nkey "authorization { users = [ { nkey: $pub } ] }"
secret_file seed "$seed"
works nkey "nkey_seed = $T/seed"
"$NKEY_GEN" | sed -n 1p >"$T/other-seed.tmp"
secret_file other-seed "$(cat "$T/other-seed.tmp")"
rm -f "$T/other-seed.tmp"
refused "nkey, another seed" "nkey_seed = $T/other-seed"
secret_file bad-seed "SUAAAA"
bad_conf "nkey, not a seed" "nkey_seed $T/bad-seed: the seed is not" \
    "nkey_seed = $T/bad-seed"
chmod 604 "$T/seed"
bad_conf "nkey seed readable by others" "nkey_seed $T/seed: holds a secret" \
    "nkey_seed = $T/seed"

# --- creds: the file checks only (see the top) ------------------------------------
bad_conf "creds missing" "creds $T/none.creds: No such file" \
    "creds = $T/none.creds"
printf '%s\n' eyJhbGciOiJlZDI1NTE5In0.e30.c2ln >>"$SECRETS"
private_file user.creds "-----BEGIN NATS USER JWT-----
eyJhbGciOiJlZDI1NTE5In0.e30.c2ln
------END NATS USER JWT------

-----BEGIN USER NKEY SEED-----
$seed
------END USER NKEY SEED------"
chmod 644 "$T/user.creds"
bad_conf "creds readable by others" "creds $T/user.creds: holds a secret" \
    "creds = $T/user.creds"
private_file half.creds "-----BEGIN NATS USER JWT-----
eyJhbGciOiJlZDI1NTE5In0.e30.c2ln"
bad_conf "creds without a seed" "want a user JWT and an nkey seed" \
    "creds = $T/half.creds"
bad_conf "creds and a token at once" "set one of them" \
    "creds = $T/half.creds
token_file = $T/token"

# --- TLS: a CA, a server and a client certificate, verify: true -------------------
tls=$T/tls
mkdir -p "$tls"
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
openssl req -x509 $ec -keyout "$tls/ca.key" -out "$tls/ca.pem" -days 1 \
    -subj /CN=mandrill-test-ca 2>>"$T/openssl.log" &&
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$tls/server.ext" &&
printf 'extendedKeyUsage=clientAuth\n' >"$tls/client.ext" &&
for who in server client; do
	openssl req $ec -keyout "$tls/$who.key" -out "$tls/$who.csr" \
	    -subj "/CN=mandrill-test-$who" 2>>"$T/openssl.log" &&
	openssl x509 -req -in "$tls/$who.csr" -CA "$tls/ca.pem" \
	    -CAkey "$tls/ca.key" -CAcreateserial -days 1 \
	    -extfile "$tls/$who.ext" -out "$tls/$who.pem" 2>>"$T/openssl.log" ||
	    break
done
check "openssl made the CA, server and client certificates" \
    "$(ls "$tls"/ca.pem "$tls"/server.pem "$tls"/client.pem 2>/dev/null | wc -l)" 3
chmod 600 "$tls"/*.key
sed -n 2p "$tls/client.key" >>"$SECRETS"
# Another CA and a client it signed: not trusted by the server.
openssl req -x509 $ec -keyout "$tls/rogue.key" -out "$tls/rogue.pem" -days 1 \
    -subj /CN=rogue 2>>"$T/openssl.log"
chmod 600 "$tls/rogue.key"

NATS_SCHEME=tls
server tls "tls {
  cert_file: \"$tls/server.pem\"
  key_file: \"$tls/server.key\"
  ca_file: \"$tls/ca.pem\"
  verify: true
}"
works TLS "tls_ca = $tls/ca.pem
tls_cert = $tls/client.pem
tls_key = $tls/client.key"
refused "TLS without a client certificate" "tls_ca = $tls/ca.pem"
refused "TLS, a client certificate of another CA" "tls_ca = $tls/ca.pem
tls_cert = $tls/rogue.pem
tls_key = $tls/rogue.key"
refused "TLS, the server's CA not trusted" "tls_ca = $tls/rogue.pem
tls_cert = $tls/client.pem
tls_key = $tls/client.key"
chmod 640 "$tls/client.key"
bad_conf "TLS key readable by others" "tls_key $tls/client.key: holds a secret" \
    "tls_ca = $tls/ca.pem
tls_cert = $tls/client.pem
tls_key = $tls/client.key"
chmod 600 "$tls/client.key"
bad_conf "tls_cert without tls_key" "tls_cert and tls_key go together" \
    "tls_cert = $tls/client.pem"
stop_nats
NATS_SCHEME=

# --- no secret anywhere -------------------------------------------------------------
check "the logs of the run were collected" \
    "$(awk 'END { print (NR > 50) }' "$T/all.log")" 1
check "no secret appears in any log line, -t output or status dump" \
    "$(grep -c -F -f "$SECRETS" "$T/all.log")" 0

finish
