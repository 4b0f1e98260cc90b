#!/bin/sh
# make install and make uninstall, into a DESTDIR, as an operator does
# them: the files go where configure said (the worker under
# $pkglibexecdir, the pages with the configured paths, the systemd unit
# and its sysusers.d and tmpfiles.d files when they are built); the
# shipped configuration refuses to start until it is filled in; and an
# operator's mandrill.conf survives a second make install and make
# uninstall.  The install directories come from the harness (Makefile.am).
. "$(dirname "$0")/lib.sh"

D=$T/dest
CONF=$D$sysconfdir/mandrill/mandrill.conf

# make_in TARGET: make TARGET DESTDIR=$D in the build tree, on its own
# (not as a part of the make check that runs this test)
make_in() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	    make -C "$top_builddir" "$1" DESTDIR="$D" > "$T/make-$1.log" 2>&1
}

# --- the first make install --------------------------------------------------
check_cmd "make install DESTDIR=... succeeds" make_in install
check "mandrill.conf.sample installed" "$(test -f "$CONF.sample" && echo yes)" yes
check "mandrill.conf installed from it, there being none" \
    "$(cmp -s "$CONF" "$CONF.sample" && echo same)" same
check "the sample is the one built, the shipped configuration" \
    "$(cmp -s "$CONF.sample" "$top_builddir/mandrill.conf.sample" && echo same)" same
check "mandrilld in \$sbindir" "$(test -x "$D$sbindir/mandrilld" && echo yes)" yes
check "mandrill-worker in \$pkglibexecdir ($pkglibexecdir)" \
    "$(test -x "$D$pkglibexecdir/mandrill-worker" && echo yes)" yes
check "no mandrill-worker left in \$libexecdir itself" \
    "$(test -e "$D$libexecdir/mandrill-worker" && echo there || echo none)" none
check "mandrilld's default worker_path is that one" \
    "$("$D$sbindir/mandrilld" --sample-config | sed -n 's/^#worker_path = //p')" \
    "$pkglibexecdir/mandrill-worker"
check "mandrillctl in \$sbindir" "$(test -x "$D$sbindir/mandrillctl" && echo yes)" yes
check "mandrillctl's default configuration file is the installed one" \
    "$("$D$sbindir/mandrillctl" status 2>&1 | grep -c -F "$sysconfdir/mandrill/mandrill.conf")" 1
for page in man8/mandrilld.8 man8/mandrill-worker.8 man5/mandrill.conf.5 \
    man1/mandrill-publish.1 man8/mandrillctl.8; do
	check "$page installed, with no @...@ left" \
	    "$(test -f "$D$mandir/$page" && grep -c '@[a-z_]*dir@' "$D$mandir/$page")" 0
done
check "mandrilld.8 names the configured configuration file" \
    "$(grep -c -F "$sysconfdir/mandrill/mandrill.conf" "$D$mandir/man8/mandrilld.8" |
    awk '{ print ($1 > 0) }')" 1
check "mandrill.conf.5 names the configured worker path" \
    "$(grep -c -F "$pkglibexecdir/mandrill" "$D$mandir/man5/mandrill.conf.5" |
    awk '{ print ($1 > 0) }')" 1

if [ "$systemdsystemunitdir" != no ]; then
	UNIT=$D$systemdsystemunitdir/mandrilld.service
	check "the unit is installed in systemdsystemunitdir" \
	    "$(test -f "$UNIT" && echo yes)" yes
	check "the unit runs the installed mandrilld on the installed file" \
	    "$(grep -c -x -F "ExecStart=$sbindir/mandrilld -f -c $sysconfdir/mandrill/mandrill.conf -p /run/mandrill/mandrilld.pid" "$UNIT")" 1
	check "the unit does not restart after a usage or configuration error" \
	    "$(grep -c -x 'RestartPreventExitStatus=64 78' "$UNIT")" 1
	check "the unit has no name left unsubstituted" \
	    "$(grep -c '@[a-z_]*dir@\|@[a-z]*directory@' "$UNIT")" 0
	if [ "$localstatedir" = /var ]; then
		want=StateDirectory=mandrill
	else
		want="ReadWritePaths=$localstatedir/lib/mandrill"
	fi
	check "the unit opens the state directory ($want)" \
	    "$(grep -c -x -F "$want" "$UNIT")" 1
else
	note "configured --with-systemdsystemunitdir=no: no unit to check"
fi
if [ "$sysusersdir" != no ]; then
	check "sysusers.d/mandrill.conf makes user mandrill, home the state directory" \
	    "$(grep -c "^u mandrill - \".*\" $localstatedir/lib/mandrill\$" \
	    "$D$sysusersdir/mandrill.conf")" 1
fi
if [ "$tmpfilesdir" != no ]; then
	check "tmpfiles.d/mandrill.conf makes the state and log directories" \
	    "$(grep -c -E "^d $localstatedir/(lib|log)/mandrill 0750 mandrill mandrill -\$" \
	    "$D$tmpfilesdir/mandrill.conf")" 2
fi

# --- the shipped configuration does nothing until it is filled in ------------
"$MANDRILLD" -t -c "$CONF" > "$T/out" 2>&1
check "mandrilld -t refuses the shipped configuration (78)" "$?" 78
check "... saying the url is not set" \
    "$(grep -c '\[source\] url is not set' "$T/out")" 1
cp "$CONF" "$T/filled.conf"
sed -i "s|^url =\$|url = nats://127.0.0.1:4222|" "$T/filled.conf"
"$MANDRILLD" -t -c "$T/filled.conf" > "$T/out" 2>&1
check "with a url, it refuses the empty command (78)" \
    "$?-$(grep -c 'mode = command needs a command' "$T/out")" 78-1
sed -i "s|^command =\$|command = /bin/true {host}|; s|^allow =\$|allow = web-*|" \
    "$T/filled.conf"
printf '[mandrill]\nstate_dir = %s/state\nworker_path = %s\n' "$T" "$WORKER" \
    >> "$T/filled.conf"
"$MANDRILLD" -t -c "$T/filled.conf" > "$T/out" 2>&1
check "filled in (url, command, allow), it passes -t" "$?" 0
check "the shipped sample is --sample-config after its head: every key" \
    "$(grep -c '^#[a-z_]* = ' "$CONF.sample")" \
    "$("$MANDRILLD" --sample-config | grep -c '^#[a-z_]* = ')"

# --- an edited mandrill.conf survives make install and make uninstall -------
echo "# edited by the operator" >> "$CONF"
cp "$CONF" "$T/edited.conf"
check_cmd "make install again succeeds" make_in install
check "a second make install keeps the edited mandrill.conf" \
    "$(cmp -s "$CONF" "$T/edited.conf" && echo kept)" kept
check "... and says so" \
    "$(grep -c "keeping $CONF" "$T/make-install.log")" 1
check "... and installs the sample again" \
    "$(cmp -s "$CONF.sample" "$top_builddir/mandrill.conf.sample" && echo same)" same
check_cmd "make uninstall succeeds" make_in uninstall
check "make uninstall leaves the edited mandrill.conf" \
    "$(cmp -s "$CONF" "$T/edited.conf" && echo kept)" kept
check "make uninstall removes the sample" \
    "$(test -e "$CONF.sample" && echo there || echo gone)" gone
check "make uninstall removes everything else" \
    "$(find "$D" -type f ! -path "$CONF" | wc -l)" 0

# --- without a mandrill.conf, make install writes one again -------------------
rm -f "$CONF"
check_cmd "make install into a prefix without mandrill.conf succeeds" make_in install
check "mandrill.conf is written again from the sample" \
    "$(cmp -s "$CONF" "$CONF.sample" && echo same)" same
make_in uninstall

finish
