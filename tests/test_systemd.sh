#!/bin/sh
# The systemd unit as built (etc/mandrilld.service, made from its .in with
# the configured paths): systemd-analyze verify finds nothing wrong with
# it, and systemd-analyze security rates its exposure 3.0 or lower.
# systemd-analyze comes with the Debian package systemd; without it this
# test cannot judge the unit, says so, and is skipped (exit 77).
. "$(dirname "$0")/lib.sh"

UNIT=$top_builddir/etc/mandrilld.service
if ! command -v systemd-analyze >/dev/null 2>&1; then
	note "systemd-analyze is not installed (Debian package systemd):"
	note "the unit is NOT verified and its security NOT rated"
	exit 77
fi
note "$(systemd-analyze --version | head -1)"
[ -f "$UNIT" ] || { fail "no $UNIT: make builds it"; finish; exit 1; }

# verify also checks that the programs the unit runs exist: it gets a copy
# whose ExecStart is the mandrilld just built, in a directory of its own
# (verify reads every unit of the directory it is given).
mkdir "$T/unit"
sed "s|^ExecStart=$sbindir/mandrilld |ExecStart=$MANDRILLD |" "$UNIT" \
    > "$T/unit/mandrilld.service"
check "the copy runs the built mandrilld" \
    "$(grep -c "^ExecStart=$MANDRILLD -f " "$T/unit/mandrilld.service")" 1
systemd-analyze verify --man=no "$T/unit/mandrilld.service" > "$T/verify" 2>&1
check "systemd-analyze verify accepts the unit" "$?" 0
check "... and prints nothing" "$(cat "$T/verify")" ""

systemd-analyze security --offline=yes --no-pager "$UNIT" > "$T/security" 2>&1
check "systemd-analyze security --offline=yes rates the unit" "$?" 0
line=$(grep 'Overall exposure level for mandrilld.service:' "$T/security")
note "$line"
score=$(echo "$line" | sed -n 's/.*: \([0-9][0-9]*\.[0-9]\).*/\1/p')
check "it prints an overall exposure level" \
    "$(echo "$score" | grep -c '^[0-9]*\.[0-9]$')" 1
check "the exposure level is 3.0 or lower (it is $score)" \
    "$(echo "$score" | awk '{ print ($1 <= 3.0) }')" 1

finish
