#!/bin/sh
# The man pages and the code in step: every configuration key the parser
# knows (as --sample-config prints it) is documented under its section in
# mandrill.conf(5) with its default, and the page documents no key the
# parser refuses; the signals mandrilld handles are the rows of the SIGNALS
# table of mandrilld(8); every option of the --help of mandrilld and of
# mandrill-publish is in the OPTIONS of its page; and each page lints
# clean.  The pages are made from their .in with the installation paths:
# they come from $top_builddir with the programs, supervisor.c from
# $top_srcdir.
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
. "$(dirname "$0")/lib.sh"

MAN=$top_builddir/man
CONF5=$MAN/mandrill.conf.5
D8=$MAN/mandrilld.8
P1=$MAN/mandrill-publish.1
SUPERVISOR_C=$top_srcdir/supervisor/supervisor.c

# Enough of roff to read what a page says: the text of one line, with the
# font macros' arguments joined as they are printed and the common escapes
# replaced; other requests and comments give nothing.
ROFF_AWK='
function unescape(t) {
	gsub(/\\f[BIRP1-4]/, "", t)
	gsub(/\\f\([A-Z][A-Z]/, "", t)
	gsub(/\\-/, "-", t)
	gsub(/\\&/, "", t)
	gsub(/\\\(aq/, "\047", t)
	gsub(/\\\((lq|rq)/, "\"", t)
	gsub(/\\\((en|em)/, "-", t)
	gsub(/\\\(bu/, "*", t)
	gsub(/\\[~ ]/, " ", t)
	return t
}
function roffline(line,    m, rest, i, c, n, inq, has, cur, out, alt, k) {
	if (line !~ /^[.\047]/)
		return unescape(line)
	m = line
	sub(/^[.\047][ \t]*/, "", m)
	rest = m
	sub(/[ \t].*$/, "", m)
	sub(/^[^ \t]*[ \t]*/, "", rest)
	if (m !~ /^(B|I|SM|SB|BR|RB|IR|RI|BI|IB)$/)
		return ""
	split("", toks)
	n = 0; cur = ""; inq = 0; has = 0
	for (i = 1; i <= length(rest); i++) {
		c = substr(rest, i, 1)
		if (c == "\"") {
			if (inq && substr(rest, i + 1, 1) == "\"") {
				cur = cur "\""
				i++
				continue
			}
			inq = !inq
			has = 1
			continue
		}
		if (!inq && (c == " " || c == "\t")) {
			if (has) {
				toks[++n] = cur
				cur = ""
				has = 0
			}
			continue
		}
		cur = cur c
		has = 1
	}
	if (has)
		toks[++n] = cur
	alt = length(m) == 2 && m != "SM" && m != "SB"
	out = ""
	for (k = 1; k <= n; k++)
		out = out (k > 1 && !alt ? " " : "") toks[k]
	return unescape(out)
}
'

for f in "$CONF5" "$D8" "$MAN/mandrill-worker.8" "$P1" "$SUPERVISOR_C" "$MANDRILLD" \
    "$PUBLISH"; do
	[ -r "$f" ] || fail "cannot read $f (top_srcdir=$top_srcdir, top_builddir=$top_builddir)"
done
[ "$FAILS" -eq 0 ] || { finish; exit 1; }

# --- configuration keys: --sample-config against mandrill.conf(5) -------------

"$MANDRILLD" --sample-config > "$T/sample.conf" 2>"$T/sample.err"
check "mandrilld --sample-config exits 0" "$?" 0

# section<TAB>key<TAB>default, from lines "#key = default" under "[section]"
awk '
/^\[[a-z_]+\][ \t]*$/ { sect = $0; sub(/^\[/, "", sect); sub(/\].*$/, "", sect); next }
/^#[a-z_][a-z0-9_]* =( |$)/ {
	name = $0; sub(/^#/, "", name); sub(/ =.*$/, "", name)
	val = $0; sub(/^#[a-z_][a-z0-9_]* =/, "", val); sub(/^ /, "", val)
	print sect "\t" name "\t" val
}' "$T/sample.conf" > "$T/code.tsv"
check "--sample-config prints keys" \
    "$(awk 'END { print (NR > 20) }' "$T/code.tsv")" 1

# KEY<TAB>section<TAB>key<TAB>entry text, for each ".TP" + ".B key" tag
# under a ".SS [section]"; BADTAG<TAB>section<TAB>line for a tag that is
# not a plain ".B key".  An entry is the lines after its tag up to the
# next .TP, .SS or .SH.
awk "$ROFF_AWK"'
function flush() {
	if (key != "") {
		gsub(/[ \t]+/, " ", text)
		sub(/^ /, "", text)
		print "KEY\t" sect "\t" key "\t" text
	}
	key = ""
	text = ""
}
/^\.SH/ { flush(); sect = ""; want = 0; next }
/^\.SS/ {
	flush()
	want = 0
	t = $0
	sub(/^\.SS[ \t]+/, "", t)
	gsub(/"/, "", t)
	sect = t ~ /^\[[a-z_]+\][ \t]*$/ ? t : ""
	sub(/^\[/, "", sect)
	sub(/\].*$/, "", sect)
	next
}
sect == "" { next }
/^\.TP/ { flush(); want = 1; next }
want {
	want = 0
	if ($0 ~ /^\.B[ \t]+[A-Za-z0-9_]+[ \t]*$/)
		key = $2
	else
		print "BADTAG\t" sect "\t" $0
	next
}
key != "" { r = roffline($0); if (r != "") text = text " " r }
END { flush() }' "$CONF5" > "$T/page.tsv"

cut -f1,2 "$T/code.tsv" | sort > "$T/code.keys"
awk -F '\t' '$1 == "KEY" { print $2 "\t" $3 }' "$T/page.tsv" | sort > "$T/page.keys"

check "every key of --sample-config is a .B tag under its .SS [section] in mandrill.conf.5" \
    "$(comm -23 "$T/code.keys" "$T/page.keys" | sed 's/^\(.*\)\t/[\1] /' | tr '\n' ' ')" ""
check "every .B tag under a .SS [section] of mandrill.conf.5 is a key the parser knows" \
    "$(comm -13 "$T/code.keys" "$T/page.keys" | sed 's/^\(.*\)\t/[\1] /' | tr '\n' ' ')" ""
check "no key is documented twice in mandrill.conf.5" \
    "$(uniq -d "$T/page.keys" | sed 's/^\(.*\)\t/[\1] /' | tr '\n' ' ')" ""
check "every tag under a .SS [section] of mandrill.conf.5 is a plain .B key" \
    "$(awk -F '\t' '$1 == "BADTAG" { printf "[%s] %s; ", $2, $3 }' "$T/page.tsv")" ""

# Each key's entry says "default VALUE" with the value --sample-config
# prints ("default empty" for an empty one); state_dir and worker_path
# too, whose defaults come from the paths configure chose, as the page's.
awk -F '\t' '
function has_default(text, val,    pat, i, c, nx) {
	pat = "default " (val == "" ? "empty" : val)
	while ((i = index(text, pat)) > 0) {
		c = substr(text, i + length(pat), 1)
		nx = substr(text, i + length(pat) + 1, 1)
		if (c == "" || c == " " ||
		    (index(".,;:)", c) > 0 && (nx == "" || nx == " ")))
			return 1
		text = substr(text, i + 1)
	}
	return 0
}
FNR == NR { if ($1 == "KEY") entry[$2 "\t" $3] = $4; next }
($1 "\t" $2) in entry && !has_default(entry[$1 "\t" $2], $3) {
	printf "[%s] %s (\"default %s\"); ", $1, $2, $3 == "" ? "empty" : $3
}' "$T/page.tsv" "$T/code.tsv" > "$T/defaults.bad"
check "each key entry in mandrill.conf.5 states the default --sample-config prints" \
    "$(cat "$T/defaults.bad")" ""

# --- signals: sigs[] in supervisor.c against the SIGNALS table of mandrilld.8 --

awk '/sigs\[\][ \t]*=/ { on = 1 } on { print } on && /;/ { exit }' \
    "$SUPERVISOR_C" | grep -o 'SIG[A-Z0-9]*' | sed 's/^SIG//' | sort -u \
    > "$T/code.sigs"
check "the sigs[] array of supervisor.c names signals" \
    "$(awk 'END { print (NR > 0) }' "$T/code.sigs")" 1

# The first column of each row of the tbl table in .SH SIGNALS; names
# such as "TERM, INT" or "TTIN / TTOU" give one signal each.
awk "$ROFF_AWK"'
/^\.SH/ { insec = $0 ~ /^\.SH[ \t]+"?SIGNALS"?[ \t]*$/; intbl = 0; next }
!insec { next }
/^\.TS/ { intbl = 1; fmt = 1; next }
/^\.TE/ { intbl = 0; next }
!intbl { next }
fmt { if ($0 ~ /\.[ \t]*$/) fmt = 0; next }
intext {
	if ($0 ~ /^T\}/ && $0 !~ /T\{[ \t]*$/)
		intext = 0
	next
}
/^[.\047]/ { next }
{
	if ($0 ~ /T\{[ \t]*$/)
		intext = 1
	f = $0
	sub(/@.*$/, "", f)
	f = unescape(f)
	if (f ~ /^[ \t]*[Ss]ignal[ \t]*$/)
		next
	n = split(f, w, /[^A-Za-z0-9]+/)
	for (i = 1; i <= n; i++)
		if (w[i] != "") {
			sub(/^SIG/, "", w[i])
			print w[i]
		}
}' "$D8" | sort -u > "$T/page.sigs"

check "every signal in sigs[] of supervisor.c is in the SIGNALS table of mandrilld.8" \
    "$(comm -23 "$T/code.sigs" "$T/page.sigs" | tr '\n' ' ')" ""
# CHLD is handled by libev's child watchers, not through sigs[].
check "the SIGNALS table of mandrilld.8 names no signal mandrilld does not handle" \
    "$( (cat "$T/code.sigs"; echo CHLD) | sort -u | comm -13 - "$T/page.sigs" | tr '\n' ' ')" ""

# --- options: --help of each program against OPTIONS of its page -----------

# help_opts HELP-FILE: the option column of the help lines
# ("  -c, --config FILE    ..."), and the bracketed options of the usage
# line ("[-ftV] [-c file]").
help_opts() {
awk '
/^usage:/ {
	s = $0
	while (match(s, /\[-[A-Za-z0-9]+( [a-z]+)?\]/)) {
		t = substr(s, RSTART + 2, RLENGTH - 3)
		sub(/ .*$/, "", t)
		for (i = 1; i <= length(t); i++)
			print "-" substr(t, i, 1)
		s = substr(s, RSTART + RLENGTH)
	}
	next
}
/^[ \t]+-/ {
	s = $0
	sub(/^[ \t]+/, "", s)
	sub(/  .*$/, "", s)
	n = split(s, w, /[ ,]+/)
	for (i = 1; i <= n; i++)
		if (w[i] ~ /^--?[A-Za-z0-9]/)
			print w[i]
}' "$1" | sort -u
}

# page_opts PAGE: the options named in the .TP tags of .SH OPTIONS.
page_opts() {
awk "$ROFF_AWK"'
/^\.SH/ { insec = $0 ~ /^\.SH[ \t]+"?OPTIONS"?[ \t]*$/; next }
!insec { next }
/^\.TP/ { want = 1; next }
want {
	want = 0
	n = split(roffline($0), w, /[ ,]+/)
	for (i = 1; i <= n; i++)
		if (w[i] ~ /^--?[A-Za-z0-9]/)
			print w[i]
}' "$1" | sort -u
}

"$MANDRILLD" --help > "$T/help.txt" 2>&1
check "mandrilld --help exits 0" "$?" 0
help_opts "$T/help.txt" > "$T/help.opts"
check "mandrilld --help lists options" \
    "$(awk 'END { print (NR > 5) }' "$T/help.opts")" 1
page_opts "$D8" > "$T/page.opts"

check "every option of mandrilld --help is a tag in OPTIONS of mandrilld.8" \
    "$(comm -23 "$T/help.opts" "$T/page.opts" | tr '\n' ' ')" ""
check "OPTIONS of mandrilld.8 documents no option --help lacks" \
    "$(comm -13 "$T/help.opts" "$T/page.opts" | tr '\n' ' ')" ""

"$PUBLISH" --help > "$T/pub-help.txt" 2>&1
check "mandrill-publish --help exits 0" "$?" 0
help_opts "$T/pub-help.txt" > "$T/pub-help.opts"
check "mandrill-publish --help lists its long options" \
    "$(grep -c '^--' "$T/pub-help.opts" | awk '{ print ($1 >= 9) }')" 1
page_opts "$P1" > "$T/pub-page.opts"

check "every option of mandrill-publish --help is a tag in OPTIONS of mandrill-publish.1" \
    "$(comm -23 "$T/pub-help.opts" "$T/pub-page.opts" | tr '\n' ' ')" ""
check "OPTIONS of mandrill-publish.1 documents no option --help lacks" \
    "$(comm -13 "$T/pub-help.opts" "$T/pub-page.opts" | tr '\n' ' ')" ""

# --- the paths configure chose are in the pages ---------------------------------

check "no page has a name left unsubstituted (@...@)" \
    "$(grep -l '@[a-zA-Z_]*dir@\|@PACKAGE_VERSION@' "$D8" "$MAN/mandrill-worker.8" \
    "$CONF5" "$P1" | tr '\n' ' ')" ""
# mandrilld -h names the configuration file its binary was built with.
conf_path=$("$MANDRILLD" -h | sed -n 's/.*configuration file (default \(.*\))$/\1/p')
check "mandrilld -h names its default configuration file" \
    "$(echo "$conf_path" | grep -c '^/.*/mandrill/mandrill\.conf$')" 1
check "FILES of mandrilld.8 and of mandrill.conf.5 name that file" \
    "$(awk "$ROFF_AWK"'/^\.SH/ { f = $0 ~ /FILES/ } f { print roffline($0) }' \
    "$D8" "$CONF5" | grep -c -x -F "$conf_path")" 2
check "the .TH line of each page has the version of the programs" \
    "$(grep -c "^\.TH .*\"mandrill $("$MANDRILLD" -V | awk '{ print $3 }')\"" \
    "$D8" "$MAN/mandrill-worker.8" "$CONF5" "$P1" | grep -c ':1$')" 4

# --- every page lints clean --------------------------------------------------

linters=0
command -v mandoc >/dev/null 2>&1 && linters=$((linters + 1))
command -v groff >/dev/null 2>&1 && linters=$((linters + 1))
if [ "$linters" -eq 0 ]; then
	fail "neither mandoc nor groff is installed: cannot lint the man pages (install mandoc or groff-base)"
fi
for page in "$D8" "$MAN/mandrill-worker.8" "$CONF5" "$P1"; do
	name=$(basename "$page")
	if command -v mandoc >/dev/null 2>&1; then
		check "mandoc -Tlint $name prints nothing" \
		    "$(mandoc -Tlint "$page" 2>&1)" ""
	fi
	if command -v groff >/dev/null 2>&1; then
		check "groff -t -man -ww -z $name prints nothing" \
		    "$(groff -t -man -ww -z "$page" 2>&1)" ""
	fi
done

finish
