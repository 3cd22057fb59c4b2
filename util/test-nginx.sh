#!/usr/bin/env bash
# test-nginx.sh - run nginx's own test suite (nginx-tests) with the module,
# as a regression gate (make test-nginx).
#
#   bash util/test-nginx.sh            (make test-nginx: after make deps build)
#
# The suite, its runner (run.sh) and the two lists of expected failing test
# files live beside the repository, in ../shared/nginx-tests; they are used
# from there, never copied. Two modes, each a full run of the suite:
#
#   off  the module loaded into every test's nginx.conf, no directive:
#        the failing files must equal baseline-failures.txt (what fails with
#        stock nginx and no module: the environment's own failures).
#   on   the module on in front of the test client, Redis down, with the
#        directives at the head of expected-on-failures.txt: the failing
#        files must equal that list, and no test's error log may hold an
#        [alert], [crit], "exited on signal", sanitizer or core dump line that
#        the same test file did not log in mode "off".
#
# "Must equal" is checked both ways: a file failing outside the list fails
# the gate, and so does a file on the list that now passes (the list is
# stale, or the module changed behaviour: look, then fix the list).
#
# Environment (all optional):
#   NGINX_TESTS          the nginx-tests directory (default ../shared/nginx-tests
#                        relative to the repository)
#   MODULE               the built module (default build/ngx_http_retarget_module.so)
#   NGINX                the nginx binary (default /usr/sbin/nginx, as the Makefile)
#   NGINX_TESTS_BASELINE list for mode "off" (default $NGINX_TESTS/baseline-failures.txt)
#   NGINX_TESTS_ON_LIST  list for mode "on" (default $NGINX_TESTS/expected-on-failures.txt)
#   NGINX_TESTS_ON_DIRECTIVES  http{} directives of mode "on" (default: read from
#                        the head of NGINX_TESTS_ON_LIST)
#   NGINX_TESTS_MODES    "off on" (default), or one of them
#   NGINX_TESTS_TIMEOUT  seconds allowed per mode (default 1500); a timeout fails
#   NGINX_TESTS_JOBS     prove -j (default 2)
#   NGINX_TESTS_RESULTS  where results go (default: a new directory under /tmp)
#   NGINX_TESTS_KEEP=1   keep the tests' directories (error logs) even on success
#   TESTS                "a.t b.t": only these files (the lists are cut to them)
#
# Exit 0 when every mode run matches; 1 otherwise; 2 on a setup error.

set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "test-nginx: $*" >&2; exit 2; }

NGINX_TESTS=${NGINX_TESTS:-$REPO/../shared/nginx-tests}
if [ ! -d "$NGINX_TESTS" ]; then
	die "nginx-tests not found at $NGINX_TESTS
test-nginx: it is kept beside the repository (../shared/nginx-tests, holding
test-nginx: suite/, run.sh and the failure lists); set NGINX_TESTS=/path/to/it"
fi
NGINX_TESTS=$(cd "$NGINX_TESTS" && pwd)
RUN_SH=$NGINX_TESTS/run.sh
SUITE=$NGINX_TESTS/suite
[ -f "$RUN_SH" ] || die "$NGINX_TESTS has no run.sh"
[ -f "$SUITE/lib/Test/Nginx.pm" ] || die "$SUITE is not an nginx-tests checkout"

MODULE=${MODULE:-$REPO/build/ngx_http_retarget_module.so}
[ -f "$MODULE" ] || die "no module at $MODULE (run 'make build' first)"

NGINX=${NGINX:-/usr/sbin/nginx}
[ -x "$NGINX" ] || die "no nginx binary at $NGINX (run 'make deps')"

BASELINE=${NGINX_TESTS_BASELINE:-$NGINX_TESTS/baseline-failures.txt}
ON_LIST=${NGINX_TESTS_ON_LIST:-$NGINX_TESTS/expected-on-failures.txt}
MODES=${NGINX_TESTS_MODES:-off on}
TIMEOUT=${NGINX_TESTS_TIMEOUT:-1500}
JOBS=${NGINX_TESTS_JOBS:-2}

for m in $MODES; do
	case $m in
	off) [ -f "$BASELINE" ] || die "no list $BASELINE" ;;
	on) [ -f "$ON_LIST" ] || die "no list $ON_LIST" ;;
	*) die "unknown mode '$m' in NGINX_TESTS_MODES (off, on)" ;;
	esac
done
case " $MODES " in *" on "*) case " $MODES " in *" off "*) ;;
	*) die "mode 'on' compares its error logs with mode 'off': run both" ;;
	esac ;;
esac

for f in ${TESTS:-}; do
	[ -f "$SUITE/${f#./}" ] || die "TESTS: no $f in $SUITE"
done

# The "on" directives: the quoted third argument of the run.sh command line
# in the head comment of the list ("# Mode: run.sh suite MODULE.so '...'"),
# which may continue over several comment lines.
if [ -n "${NGINX_TESTS_ON_DIRECTIVES:-}" ]; then
	ON_DIRECTIVES=$NGINX_TESTS_ON_DIRECTIVES
elif [ -f "$ON_LIST" ]; then
	ON_DIRECTIVES=$(sed -n '/^#/!q; s/^#[[:space:]]*//p' "$ON_LIST" | tr '\n' ' ' \
		| sed -n "s/.*Mode:[^']*'\([^']*\)'.*/\1/p" | tr -s ' ')
	ON_DIRECTIVES=${ON_DIRECTIVES% }
fi
case " $MODES " in *" on "*)
	case "${ON_DIRECTIVES:-}" in
	*"retarget on;"*) ;;
	*) die "no \"Mode: run.sh ... '<directives>'\" with 'retarget on;' at the head of $ON_LIST" ;;
	esac ;;
esac

# Results go to a directory of our own that the unprivileged test user can
# read: the module is copied there, because the checkout may sit where
# "nobody" cannot read (/root/...). Test directories are kept
# (TEST_NGINX_LEAVE=1) so that the error logs can be read after the run;
# a Perl module loaded into each test file (PERL5OPT) puts them under
# tmp/<file.t>/ so that each log is known to belong to its file.
RESULTS=${NGINX_TESTS_RESULTS:-$(mktemp -d /tmp/ngxt.XXXXXX)}
mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
chmod 755 "$RESULTS"
mkdir -p "$RESULTS/lib"
cp "$MODULE" "$RESULTS/ngx_http_retarget_module.so"
chmod 644 "$RESULTS/ngx_http_retarget_module.so"
cat >"$RESULTS/lib/NgxtPerFileTmpdir.pm" <<'EOF'
package NgxtPerFileTmpdir;
# Written by ngx_retarget_module util/test-nginx.sh, loaded into every perl
# of an nginx-tests run through PERL5OPT: a test file gets TMPDIR/<file.t>/,
# so its kept test directory (TEST_NGINX_LEAVE) names the file it ran for.
# Any other perl (prove, nginx's embedded perl, helpers) is left alone.
BEGIN {
	if (defined $ENV{TMPDIR} && $0 =~ m!([^/]+\.t)\z!
		&& $ENV{TMPDIR} !~ m!/\Q$1\E\z!)
	{
		my $d = "$ENV{TMPDIR}/$1";
		mkdir $d;
		$ENV{TMPDIR} = $d if -d $d && -w _;
	}
}
1;
EOF
chmod -R a+rX "$RESULTS/lib"

if [ "$(id -u)" = 0 ]; then
	TEST_USER=${RUN_AS:-nobody}
	runuser -u "$TEST_USER" -- test -r "$SUITE/lib/Test/Nginx.pm" \
		|| die "user $TEST_USER cannot read $SUITE (make it world-readable)"
	runuser -u "$TEST_USER" -- test -r "$RESULTS/ngx_http_retarget_module.so" \
		|| die "user $TEST_USER cannot read $RESULTS (a parent directory is not world-searchable?)"
else
	TEST_USER=$(id -un)
fi

# strip comments and blank lines; first word of each line, sorted
list_files() {
	sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$1" | awk '{print $1}' | sort -u
}

# Lines of the kept error logs that the gate looks at, one per line as
# "<file.t><TAB><normalized message><TAB><original line>"; the normalized
# message has no time, pid, connection number, test directory or other
# number, so that the same event in two runs compares equal.
scan_logs() {
	local tmp=$1 f
	[ -d "$tmp" ] || return 0
	for f in "$tmp"/*.t; do
		[ -d "$f" ] || continue
		find "$f" -type f -name '*.log' -print0 \
			| xargs -0 -r grep -a -h -E \
				'\[(alert|crit)\]|exited on signal|Sanitizer|core dumped' \
			| awk -v t="$(basename "$f")" -v d="$f" '{
				o = $0; n = $0
				gsub(/\t/, " ", o)
				i = index(n, d); while (i) { n = substr(n, 1, i - 1) "TESTDIR" substr(n, i + length(d)); i = index(n, d) }
				sub(/^[0-9\/]+ [0-9:]+ /, "", n)
				gsub(/nginx-test-[A-Za-z0-9_]+/, "nginx-test-X", n)
				gsub(/[0-9]+/, "N", n)
				gsub(/\t/, " ", n)
				print t "\t" n "\t" o
			}' || true
	done | sort -u
}

FAILED=()
SUMMARY=()

run_mode() {
	local mode=$1 list=$2 dirs=$3 out=$RESULTS/$1 rc=0 start end
	echo
	echo "=================== nginx-tests, mode $mode ==================="
	if [ "$mode" = on ]; then
		echo "directives: $dirs"
	else
		echo "directives: (none: the module is loaded, not enabled)"
	fi
	echo "list:       $list"
	echo "results:    $out"
	rm -rf "$out"
	mkdir -p "$out"
	chmod 755 "$out"
	start=$(date +%s)
	# run.sh: 0 nothing outside the list, 1 new failures, 2 setup, 3 timeout
	{
		rc=0
		TEST_NGINX_BINARY=$NGINX BASELINE=$list JOBS=$JOBS SUITE_TIMEOUT=$TIMEOUT RESULTS_DIR=$out \
			TEST_NGINX_LEAVE=1 \
			PERL5OPT="-I$RESULTS/lib -MNgxtPerFileTmpdir${PERL5OPT:+ $PERL5OPT}" \
			bash "$RUN_SH" "$SUITE" "$RESULTS/ngx_http_retarget_module.so" "$dirs" \
			|| rc=$?
		echo $rc >"$out/run.rc"
	} 2>&1 | tee "$out/run.log" | sed 's/^/  | /'
	rc=$(cat "$out/run.rc" 2>/dev/null || echo 2)
	end=$(date +%s)
	local secs=$((end - start)) ok=1
	echo
	echo "--- mode $mode: gate (${secs}s, run.sh exit $rc) ---"
	case $rc in
	0 | 1) ;;
	3) echo "FAIL: the suite timed out after ${TIMEOUT}s (NGINX_TESTS_TIMEOUT): results incomplete"; ok=0 ;;
	*) echo "FAIL: run.sh could not run the suite (exit $rc): see above"
	   FAILED+=("$mode: run.sh exit $rc")
	   SUMMARY+=("mode $mode: setup error (run.sh exit $rc), ${secs}s")
	   return ;;
	esac

	# the failing files must equal the list (only files that ran count)
	list_files "$list" >"$out/expected"
	if [ -n "${TESTS:-}" ]; then
		tr -s ' ' '\n' <<<"$TESTS" | sed '/^$/d; s!^\./!!' | sed 's!^\./!!' | sort -u >"$out/ran"
		comm -12 "$out/expected" "$out/ran" >"$out/expected.sub"
		mv "$out/expected.sub" "$out/expected"
	fi
	# run.sh counts a file as failing from prove's summary; a file whose
	# TAP stopped early (prove killed, a timeout, a crash of the harness)
	# can be missing from it: such a file fails here, as "incomplete"
	if [ -n "${TESTS:-}" ]; then
		tr -s ' ' '\n' <<<"$TESTS" | sed '/^$/d; s!^\./!!'
	else
		(cd "$SUITE" && ls -- *.t)
	fi | perl -e '
		my ($tap, $out) = @ARGV;
		open my $o, ">>", $out or die "$out: $!";
		while (my $f = <STDIN>) {
			chomp $f;
			my ($plan, $n, $why) = (undef, 0);
			if (open my $h, "<", "$tap/$f") {
				while (<$h>) {
					$plan = $1 if /^1\.\.(\d+)/;
					$n++ if /^(not )?ok\b/;
					$why = "bail out" if /^Bail out!/;
				}
				$why //= "no plan" unless defined $plan;
				$why //= "$n of $plan tests reported" if $plan && $n != $plan;
			} else {
				$why = "no TAP";
			}
			print $o "$f\t# incomplete: $why\n" if $why;
		}' "$out/tap" "$out/incomplete-files.txt"
	cut -f1 "$out/incomplete-files.txt" | sort -u >"$out/incomplete"
	cut -f1 "$out/failing-files.txt" | sort -u | sort -u - "$out/incomplete" >"$out/failing"
	if [ -s "$out/incomplete" ]; then
		echo "incomplete files (counted as failing):"
		sed 's/^/    /' "$out/incomplete-files.txt"
	fi
	local new gone
	new=$(comm -13 "$out/expected" "$out/failing")
	gone=$(comm -23 "$out/expected" "$out/failing")
	if [ -z "$new$gone" ]; then
		echo "failing files: $(wc -l <"$out/failing"), equal to the list ($(basename "$list"))"
	else
		ok=0
		echo "FAIL: the failing files differ from $(basename "$list"):"
		diff -u --label "expected ($(basename "$list"))" --label "failing (this run)" \
			"$out/expected" "$out/failing" | sed 's/^/    /' || true
		for f in $new; do
			echo "  failing, not on the list: $f  $(cat "$out/failing-files.txt" "$out/incomplete-files.txt" | grep -P "^\Q$f\E\t" | cut -f2- | head -1)"
		done
		for f in $gone; do
			echo "  on the list, but passed:  $f  (list stale, or a changed behaviour: check, then update the list)"
		done
		echo "  what failed: $out/prove.log, raw TAP: $out/tap/<file.t>, error logs: $out/tmp/<file.t>/"
		echo "  rerun alone, both modes: TESTS=\"$(printf "%s " $new $gone)\" make test-nginx"
	fi

	# error logs
	scan_logs "$out/tmp" >"$out/log-lines"
	local nlog nfiles
	nlog=$(wc -l <"$out/log-lines")
	nfiles=$(cut -f1 "$out/log-lines" | sort -u | wc -l)
	if [ "$mode" = off ]; then
		echo "error logs: $nlog [alert]/[crit]/crash lines in $nfiles test files (the baseline for mode on)"
		cut -f1,2 "$out/log-lines" | sort -u >"$RESULTS/log-baseline"
	else
		cut -f1,2 "$out/log-lines" | sort -u >"$out/log-keys"
		comm -23 "$out/log-keys" "$RESULTS/log-baseline" >"$out/log-new"
		if [ -s "$out/log-new" ]; then
			ok=0
			echo "FAIL: error log lines not logged by the same test file in mode off:"
			# the original lines of each new message (at most 5 a file)
			awk -F'\t' 'NR == FNR { k[$1 "\t" $2] = 1; next }
				($1 "\t" $2) in k && c[$1]++ < 5 { print "    " $1 ": " $3 }' \
				"$out/log-new" "$out/log-lines"
			echo "  ($(wc -l <"$out/log-new") distinct new messages in $(cut -f1 "$out/log-new" | sort -u | wc -l) files;"
			echo "   the logs: $out/tmp/<file.t>/nginx-test-*/)"
		else
			echo "error logs: $nlog [alert]/[crit]/crash lines in $nfiles test files, none new against mode off"
		fi
	fi

	local counts
	counts=$(sed -n 's/^files: *//p' "$out/summary.txt" 2>/dev/null || true)
	if [ $ok = 1 ]; then
		SUMMARY+=("mode $mode: PASS, files $counts, ${secs}s")
	else
		SUMMARY+=("mode $mode: FAIL, files $counts, ${secs}s")
		FAILED+=("$mode")
	fi
}

echo "nginx-tests:  $NGINX_TESTS"
echo "nginx:        $NGINX"
echo "module:       $MODULE"
echo "tests run as: $TEST_USER"
echo "results:      $RESULTS"
for m in $MODES; do
	case $m in
	off) run_mode off "$BASELINE" "" ;;
	on) run_mode on "$ON_LIST" "$ON_DIRECTIVES" ;;
	esac
done

echo
echo "=================== nginx-tests summary ==================="
printf '%s\n' "${SUMMARY[@]}"
if [ ${#FAILED[@]} -gt 0 ]; then
	echo "test-nginx: FAILED (${FAILED[*]}); everything is kept in $RESULTS"
	exit 1
fi
if [ "${NGINX_TESTS_KEEP:-}" = 1 ]; then
	echo "test-nginx: passed; kept $RESULTS"
else
	for m in $MODES; do rm -rf "$RESULTS/$m/tmp"; done
	echo "test-nginx: passed (logs and lists in $RESULTS)"
fi
