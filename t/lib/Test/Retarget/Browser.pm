package Test::Retarget::Browser;

# Helpers of the real-browser tests (t/09*-browser*.t): Debian's Chromium
# driven by playwright-core from a node script in t/browser/, which prints
# one JSON line of observations that the .t file asserts.
#
# Needs /usr/bin/chromium (package chromium), node and npm (packages nodejs
# and npm); `make test` installs them (util/install-deps.sh).  When one is
# missing browser_prerequisites() FAILS, it does not skip.
# t/browser/node_modules is installed with `npm ci` from the pinned
# package-lock.json when it is missing or does not match the lock.
#
#   my $node = browser_prerequisites() or do { done_testing(); exit };
#   my $run  = run_browser_script('notice.js', [--base => $base, ...],
#                                 limit => 60);
#   my $r    = browser_result($run) or do { done_testing(); exit };
#   my $S    = scenarios_ran($r, qw(new_visitor ...));
#
# Every child process is bounded in time (run_bounded): npm ci by
# $NPM_LIMIT, the browser script by the test's own limit.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use JSON::PP qw(decode_json);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Test::More;
use Test::Retarget qw(servroot);

use Exporter qw(import);

our @EXPORT = qw($BROWSER_DIR browser_prerequisites run_browser_script
                 browser_result scenarios_ran nothing_foreign nav_summary
                 run_bounded slurp);

# t/browser: the scripts, package.json, package-lock.json, node_modules
our $BROWSER_DIR = abs_path(dirname(abs_path(__FILE__)) . '/../../../browser');

my $CHROMIUM  = '/usr/bin/chromium';
my $NODE_MIN  = 18;           # Debian bookworm ships nodejs 18
my $NPM_LIMIT = 300;          # seconds for npm ci
my $HOW       = 'run `make test` (or `sh util/install-deps.sh`), which'
              . ' installs the Debian packages chromium, nodejs and npm';

my $Node;                     # set by browser_prerequisites()

# Checks (as tests, failing, never skipping) that chromium and node $NODE_MIN+
# are there and that t/browser/node_modules matches the lock (npm ci if
# not).  Returns node's path when all is ready, else undef.  Call it after
# servroot exists (write_file): npm ci logs to servroot/npm-ci.log.
sub browser_prerequisites {
    my $node = find_in_path('node');
    ok(-x $CHROMIUM, "chromium is installed at $CHROMIUM")
        or diag("$CHROMIUM is missing: $HOW");
    ok($node, 'node is in PATH') or diag("node is missing: $HOW");
    if ($node) {
        my $v = `"$node" -e 'process.stdout.write(process.versions.node)' 2>&1`;
        my ($major) = $v =~ /^(\d+)\./;
        ok(defined $major && $major >= $NODE_MIN, "node is $NODE_MIN or later")
            or diag("node --version says '$v'; playwright-core needs $NODE_MIN+");
    }
    return undef if !-x $CHROMIUM || !$node || !install_node_modules();
    return $Node = $node;
}

# Installs t/browser/node_modules from the lock file when it is missing or
# holds another playwright-core version than the lock.
sub install_node_modules {
    my $dir = $BROWSER_DIR;
    my $want = eval {
        decode_json(slurp("$dir/package-lock.json"))
            ->{packages}{'node_modules/playwright-core'}{version};
    };
    ok($want, 't/browser/package-lock.json pins playwright-core')
        or return 0;
    my $have = eval {
        decode_json(slurp("$dir/node_modules/playwright-core/package.json"))
            ->{version};
    };
    return 1 if defined $have && $have eq $want;

    my $npm = find_in_path('npm');
    if (!ok($npm, 'npm is in PATH (t/browser/node_modules must be installed)')) {
        diag("npm is missing: $HOW");
        return 0;
    }
    my $log = servroot() . '/npm-ci.log';
    my $t0 = time;
    my ($st, $o, $e) = run_bounded([$npm, 'ci', '--no-audit', '--no-fund'],
        dir => $dir, limit => $NPM_LIMIT, stdout => $log, stderr => $log,
        env => { npm_config_update_notifier => 'false' });
    if (!ok($st == 0 && -f "$dir/node_modules/playwright-core/package.json",
            "npm ci in t/browser (playwright-core $want)"))
    {
        diag("npm ci: " . describe($st) . "\n" . tail($o, 40));
        return 0;
    }
    note(sprintf 'npm ci: %.1f s', time - $t0);
    return 1;
}

# Runs t/browser/$script with node and @$args, at most $o{limit} seconds,
# stdout and stderr to servroot/browser.out and browser.err.  Chromium
# writes into $HOME (~/.pki, caches), kept (fresh) inside servroot, and
# Playwright puts the temporary profile under $TMPDIR: a short directory
# of its own under /tmp, since Chromium's profile holds a unix socket and
# a socket's path is at most 107 bytes (a checkout's servroot may be
# deeper than that allows).  Returns
# { status, stdout, stderr, took, limit, err } for browser_result().
sub run_browser_script {
    my ($script, $args, %o) = @_;
    die "browser_prerequisites() first\n" unless $Node;
    die "run_browser_script: no limit\n" unless $o{limit};
    my $out = servroot();
    my %env = (HOME => "$out/browser-home",
               TMPDIR => tempdir('rt-browser-XXXXXX', TMPDIR => 1,
                                 CLEANUP => 1),
               XDG_CONFIG_HOME => "$out/browser-home/.config",
               XDG_CACHE_HOME => "$out/browser-home/.cache");
    remove_tree($env{HOME});
    make_path($env{HOME});

    my %run = (limit => $o{limit}, err => "$out/browser.err");
    my $t0 = time;
    @run{qw(status stdout stderr)} = run_bounded(
        [$Node, "$BROWSER_DIR/$script", @$args],
        dir => $BROWSER_DIR, env => \%env, limit => $o{limit},
        stdout => "$out/browser.out", stderr => $run{err});
    $run{took} = time - $t0;
    note(sprintf 'browser script: %.1f s', $run{took});
    return \%run;
}

# The script's JSON result (its last line starting with "{"), after
# checking that the script ran to completion within its limit; undef
# (with a diag) when there is none.
sub browser_result {
    my ($run) = @_;
    my ($status, $stdout, $limit) = @$run{qw(status stdout limit)};
    my ($json) = grep { /^\{/ } reverse split /\n/, $stdout;
    my $r = eval { decode_json($json // '') };
    ok($status == 0 && $r && !$r->{fatal}, 'browser script ran to completion')
        or diag("status: " . describe($status) . "\n"
                . ($r && $r->{fatal} ? "fatal: $r->{fatal}\n" : '')
                . "stderr ($run->{err}):\n" . tail($run->{stderr}, 40));
    cmp_ok($run->{took}, '<', $limit, "browser script took under ${limit}s");
    if (!$r) {
        diag("no JSON result on stdout:\n" . tail($stdout, 20));
        return undef;
    }
    note("node $r->{node}, playwright-core $r->{playwright}, chromium "
         . ($r->{browser} // '?'));
    return $r;
}

# One test per scenario: it ran and recorded no error.  Returns the
# scenarios (name => observations).
sub scenarios_ran {
    my ($r, @names) = @_;
    my $S = $r->{scenarios} || {};
    for my $name (@names) {
        ok($S->{$name} && !$S->{$name}{error}, "$name: ran without error")
            or diag($S->{$name} ? $S->{$name}{error} : 'scenario did not run');
    }
    return $S;
}

# The browser reached nothing but 127.0.0.1.
sub nothing_foreign {
    my ($r) = @_;
    is_deeply($r->{foreign}, [], 'the browser requested nothing but 127.0.0.1')
        or diag(join "\n", @{ $r->{foreign} });
}

# "METHOD /path?query STATUS [Location]" for each main-frame response.
sub nav_summary {
    my ($navs) = @_;
    return [ map {
        (my $path = $_->{url}) =~ s{^https?://[^/]+}{};
        join ' ', $_->{method}, $path, $_->{status},
                  defined $_->{location} ? $_->{location} : ();
    } @{ $navs || [] } ];
}

# Runs argv with a time limit; returns (wait status or -1 on timeout,
# stdout, stderr).  On timeout the process and everything it started
# (found by parent pid, before it is killed) get TERM, then KILL.
# %o: limit (seconds), stdout and stderr (files, may be the same), dir,
# env (added to the environment).
sub run_bounded {
    my ($argv, %o) = @_;
    my $pid = fork // die "fork: $!\n";
    if (!$pid) {
        chdir $o{dir} or die "chdir $o{dir}: $!\n" if $o{dir};
        @ENV{ keys %{ $o{env} || {} } } = values %{ $o{env} || {} };
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $o{stdout} or die "$o{stdout}: $!\n";
        if ($o{stderr} eq $o{stdout}) {
            open STDERR, '>&', \*STDOUT;
        } else {
            open STDERR, '>', $o{stderr} or die "$o{stderr}: $!\n";
        }
        $SIG{$_} = 'DEFAULT' for qw(INT TERM PIPE);
        { no warnings 'exec'; exec { $argv->[0] } @$argv; }
        print STDERR "exec $argv->[0]: $!\n";
        POSIX::_exit(127);
    }
    my $deadline = time + $o{limit};
    my $status;
    while (1) {
        my $w = waitpid($pid, WNOHANG);
        if ($w == $pid) { $status = $?; last }
        if (time >= $deadline) {
            diag("$argv->[0] still running after $o{limit}s: stopping it");
            my @tree = ($pid, descendants($pid));
            kill 'TERM', @tree;
            my $until = time + 5;
            sleep 0.1 while waitpid($pid, WNOHANG) != $pid && time < $until;
            kill 'KILL', grep { kill 0, $_ } @tree;
            waitpid($pid, 0);
            $status = -1;
            last;
        }
        sleep 0.1;
    }
    return ($status, slurp($o{stdout}), slurp($o{stderr}));
}

sub descendants {
    my ($root) = @_;
    my %kids;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $line = <$fh> // next;
        push @{ $kids{$2} }, $1 if $line =~ /^(\d+) \(.*\) \S+ (\d+) /;
    }
    my @out;
    my @unvisited = ($root);
    while (defined(my $p = shift @unvisited)) {
        my @k = @{ $kids{$p} || [] };
        push @out, @k;
        push @unvisited, @k;
    }
    return @out;
}

sub find_in_path {
    my ($name) = @_;
    for my $d (split /:/, $ENV{PATH} // '') {
        return "$d/$name" if length $d && -f "$d/$name" && -x _;
    }
    return undef;
}

sub describe {
    my ($st) = @_;
    return 'timed out' if $st == -1;
    return 'killed by signal ' . ($st & 127) if $st & 127;
    return 'exit status ' . ($st >> 8);
}

# a file's bytes ('' when it cannot be read)
sub slurp {
    my ($path) = @_;
    open my $fh, '<:raw', $path or return '';
    local $/;
    return scalar(<$fh>) // '';
}

sub tail {
    my ($text, $n) = @_;
    my @l = split /\n/, $text // '';
    @l = @l[-$n .. -1] if @l > $n;
    return join "\n", @l;
}

1;
