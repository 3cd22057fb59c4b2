# A real browser: Debian's Chromium, driven by playwright-core from
# t/browser/notice.js, goes through the transparency notice of a small shop
# page: a new visitor sees it (and cannot read the HttpOnly visitor cookie),
# a keyboard-only visitor dismisses it with Tab and Enter, another opts out
# with the mouse, and in opt-in mode nothing is set until "Allow".
#
# Needs /usr/bin/chromium (package chromium), node and npm (packages nodejs
# and npm); `make test` installs them (util/install-deps.sh).  When one is
# missing this test FAILS, it does not skip.  t/browser/node_modules is
# installed here with `npm ci` from the pinned package-lock.json when it is
# missing or does not match the lock.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use JSON::PP qw(decode_json);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

my $REPO      = abs_path(dirname(abs_path(__FILE__)) . '/..');
my $DIR       = "$REPO/t/browser";
my $CHROMIUM  = '/usr/bin/chromium';
my $NODE_MIN  = 18;           # Debian bookworm ships nodejs 18
my $RUN_LIMIT = 60;           # seconds for the whole browser script
my $NPM_LIMIT = 300;          # seconds for npm ci
my $PAGE      = '/shop.html';

#==========================================================================
# The shop (written first: that also sets up servroot, which keeps npm-ci.log)
#==========================================================================

write_file('shop.html', <<'HTML');
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Test shop</title>
<link rel="icon" href="data:,">
<style>body{font:16px/1.5 sans-serif;margin:2rem;min-height:900px}</style>
<script>document.cookie = "shop_pref=compact; path=/; SameSite=Lax";</script>
</head>
<body>
<header><h1>Test shop</h1>
<nav><a href="/shop.html">Home</a> <a href="/privacy.html">Privacy</a></nav>
</header>
<main>
<article><h2>Blue mug</h2><p>A mug, blue. 12.00 EUR</p>
<button type="button">Add to cart</button></article>
</main>
</body>
</html>
HTML

write_file('privacy.html', <<'HTML');
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Privacy</title>
<link rel="icon" href="data:,"></head>
<body><h1>Privacy policy</h1></body></html>
HTML

#==========================================================================
# Prerequisites: fail, never skip
#==========================================================================

my $node = find_in_path('node');
my $npm  = find_in_path('npm');
my $how  = 'run `make test` (or `sh util/install-deps.sh`), which installs'
         . ' the Debian packages chromium, nodejs and npm';

ok(-x $CHROMIUM, "chromium is installed at $CHROMIUM")
    or diag("$CHROMIUM is missing: $how");
ok($node, 'node is in PATH') or diag("node is missing: $how");
if ($node) {
    my $v = `"$node" -e 'process.stdout.write(process.versions.node)' 2>&1`;
    my ($major) = $v =~ /^(\d+)\./;
    ok(defined $major && $major >= $NODE_MIN, "node is $NODE_MIN or later")
        or diag("node --version says '$v'; playwright-core needs $NODE_MIN+");
}
if (!-x $CHROMIUM || !$node || !install_node_modules()) {
    done_testing();
    exit;
}

#==========================================================================
# nginx: notice mode on the main port, opt-in mode on a second server
#==========================================================================

my $SECRET     = '0123456789abcdef0123456789abcdef';
my $OPTIN_PORT = $ENV{TEST_NGINX_RAND_PORT_1};

my $started = start_nginx({
    http_config => qq{
        retarget_secret $SECRET;
        retarget_privacy_url /privacy.html;

        server {
            listen 127.0.0.1:$OPTIN_PORT;
            server_name localhost;
            retarget on;
            retarget_consent optin;
            location / { }
            location /retarget/ { retarget_control; }
        }
    },
    config => q{
        retarget on;
        location / { }
        location /retarget/ { retarget_control; }
    },
});
ok($started, 'nginx started (notice mode and opt-in mode servers)');
if (!$started) {
    done_testing();
    exit;
}

#==========================================================================
# The browser run
#==========================================================================

my $base  = 'http://127.0.0.1:' . server_port();
my $optin = "http://127.0.0.1:$OPTIN_PORT";
my $out   = servroot();
# Chromium writes into $HOME (~/.pki, caches) and Playwright puts the
# temporary profile under $TMPDIR: keep both inside servroot.
my %env = (HOME => "$out/browser-home", TMPDIR => "$out/browser-tmp",
           XDG_CONFIG_HOME => "$out/browser-home/.config",
           XDG_CACHE_HOME => "$out/browser-home/.cache");
remove_tree($env{HOME}, $env{TMPDIR});
make_path($env{HOME}, $env{TMPDIR});

my $t0 = time;
my ($status, $stdout, $stderr) = run_bounded(
    [$node, "$DIR/notice.js", '--base', $base, '--optin', $optin,
     '--out', $out],
    dir => $DIR, env => \%env, limit => $RUN_LIMIT,
    stdout => "$out/browser.out", stderr => "$out/browser.err");
my $took = time - $t0;
note(sprintf 'browser script: %.1f s', $took);

stop_nginx();
check_error_log_clean('browser run');

my ($json) = grep { /^\{/ } reverse split /\n/, $stdout;
my $r = eval { decode_json($json // '') };
ok($status == 0 && $r && !$r->{fatal}, 'browser script ran to completion')
    or diag("status: " . describe($status) . "\n"
            . ($r && $r->{fatal} ? "fatal: $r->{fatal}\n" : '')
            . "stderr ($out/browser.err):\n" . tail($stderr, 40));
cmp_ok($took, '<', $RUN_LIMIT, "browser script took under ${RUN_LIMIT}s");
if (!$r) {
    diag("no JSON result on stdout:\n" . tail($stdout, 20));
    done_testing();
    exit;
}
note("node $r->{node}, playwright-core $r->{playwright}, chromium "
     . ($r->{browser} // '?'));

my $S = $r->{scenarios} || {};
for my $name (qw(new_visitor keyboard_ack optout optin screenshot)) {
    ok($S->{$name} && !$S->{$name}{error}, "$name: ran without error")
        or diag($S->{$name} ? $S->{$name}{error} : 'scenario did not run');
}

# 1. A new visitor
{
    my $s = $S->{new_visitor} || {};
    is($s->{status}, 200, 'new visitor: page status 200');
    is($s->{regions}, 1, 'new visitor: one region "Privacy notice"');
    ok($s->{visible}, 'new visitor: the notice is visible');
    my $d = $s->{dom} || {};
    ok($d->{in_viewport}, 'new visitor: the notice is in the viewport');
    is($d->{parent}, 'BODY', 'new visitor: the notice is a child of <body>');
    ok($d->{last_in_body}, 'new visitor: the notice is the last element of <body>');
    ok($d->{after_main}, 'new visitor: the notice comes after the page content');
    is_deeply($d->{buttons}, ['OK', 'Opt out'], 'new visitor: buttons OK and Opt out');
    is_deeply($d->{links}, ['/privacy.html'], 'new visitor: links to the privacy page');
    like($s->{source} // '',
         qr{</main>\n<div class="rt-notice" role="region" aria-label="Privacy notice".*</div></body>\n</html>\n\z}s,
         'new visitor: in the source, the notice sits just before </body>');

    my $vid = cookie($s->{cookies}, 'rt_vid');
    ok($vid, 'new visitor: the browser has the rt_vid cookie');
    like($vid->{value} // '', qr/^[\w-]{22}\.[\w-]{22}\z/,
         'new visitor: rt_vid is <id>.<sig>');
    ok($vid && $vid->{httpOnly}, 'new visitor: rt_vid is HttpOnly');
    is($vid && $vid->{sameSite}, 'Lax', 'new visitor: rt_vid is SameSite=Lax');
    ok(!cookie($s->{cookies}, 'rt_vid_consent'), 'new visitor: no consent cookie yet');
    like($s->{document_cookie} // '', qr/(?:^|; )shop_pref=compact(?:;|\z)/,
         "new visitor: document.cookie works (the page's own cookie)");
    unlike($s->{document_cookie} // '', qr/rt_vid/,
           'new visitor: document.cookie does not show rt_vid');
}

# 2. Keyboard only
{
    my $s = $S->{keyboard_ack} || {};
    is($s->{notice_before}, 1, 'keyboard: the notice is shown');
    ok($s->{reached_ok}, 'keyboard: Tab reaches the OK button')
        or diag('focus path: ' . join(' > ', map { $_ // '(body)' } @{ $s->{focus_path} || [] }));
    note("keyboard: $s->{tabs} Tab presses to reach OK") if $s->{reached_ok};
    unlike($s->{ok_outline} // 'none', qr/^none/,
           'keyboard: the focused OK button has a visible outline');
    is_deeply(nav_summary($s->{navigations}),
              ["POST /retarget/ack?to=$PAGE 303 $base$PAGE", "GET $PAGE 200"],
              'keyboard: Enter posts ack, the browser follows the 303 back');
    is($s->{url_after}, "$base$PAGE", 'keyboard: back on the same page');
    is($s->{notice_after}, 0, 'keyboard: the notice is gone');
    is($s->{url_after_reload}, "$base$PAGE", 'keyboard: reload stays on the page');
    is($s->{notice_after_reload}, 0, 'keyboard: still gone after reload');
    is(cookie_value($s->{cookies}, 'rt_vid_consent'), 'ack',
       'keyboard: consent cookie rt_vid_consent=ack');
    ok(cookie($s->{cookies}, 'rt_vid'), 'keyboard: still tracked (rt_vid kept)');
}

# 3. Opt out
{
    my $s = $S->{optout} || {};
    ok(cookie($s->{cookies_before}, 'rt_vid'), 'opt out: rt_vid set before the click');
    is_deeply(nav_summary($s->{navigations}),
              ["POST /retarget/optout?to=$PAGE 303 $base$PAGE", "GET $PAGE 200"],
              'opt out: the click posts optout, the browser follows the 303 back');
    is($s->{url_after}, "$base$PAGE", 'opt out: back on the same page');
    is($s->{notice_after}, 0, 'opt out: no notice');
    ok(!cookie($s->{cookies}, 'rt_vid'), 'opt out: the rt_vid cookie is gone');
    is(cookie_value($s->{cookies}, 'rt_vid_consent'), 'out',
       'opt out: consent cookie rt_vid_consent=out');
    is($s->{notice_after_reload}, 0, 'opt out: no notice after reload');
    ok(!cookie($s->{cookies_after_reload}, 'rt_vid'),
       'opt out: no rt_vid after reload either');
}

# 4. Opt-in mode
{
    my $s = $S->{optin} || {};
    ok(!cookie($s->{cookies_before}, 'rt_vid'), 'opt-in: no rt_vid before the click');
    ok(!cookie($s->{cookies_before}, 'rt_vid_consent'), 'opt-in: no consent cookie before the click');
    ok($s->{visible_before}, 'opt-in: the notice is visible');
    is_deeply($s->{buttons}, ['Allow', 'No, thanks'], 'opt-in: buttons Allow and No, thanks');
    is_deeply(nav_summary($s->{navigations}),
              ["POST /retarget/optin?to=$PAGE 303 $optin$PAGE", "GET $PAGE 200"],
              'opt-in: "Allow" posts optin, the browser follows the 303 back');
    is($s->{url_after}, "$optin$PAGE", 'opt-in: back on the same page');
    is($s->{notice_after}, 0, 'opt-in: no notice after Allow');
    my $vid = cookie($s->{cookies}, 'rt_vid');
    like($vid ? $vid->{value} : '', qr/^[\w-]{22}\.[\w-]{22}\z/,
         'opt-in: rt_vid is set after Allow');
    ok($vid && $vid->{httpOnly}, 'opt-in: rt_vid is HttpOnly');
    is(cookie_value($s->{cookies}, 'rt_vid_consent'), 'in',
       'opt-in: consent cookie rt_vid_consent=in');
}

# 5. Screenshot, for humans (not asserted)
diag("screenshot of the notice: $S->{screenshot}{path}")
    if $S->{screenshot} && $S->{screenshot}{bytes};

# Nothing left 127.0.0.1, and nginx saw the browser's form posts.
is_deeply($r->{foreign}, [], 'the browser requested nothing but 127.0.0.1')
    or diag(join "\n", @{ $r->{foreign} });
ok(@{ $r->{requests} || [] } >= 10, 'the browser made requests')
    or diag(join "\n", @{ $r->{requests} || [] });
my $access = slurp("$out/logs/access.log");
for my $action (qw(ack optout optin)) {
    like($access, qr{"POST /retarget/\Q$action\E\?to=\Q$PAGE\E HTTP/1\.1" 303 .*Chrome/}m,
         "access.log: Chromium posted $action and got 303");
}

done_testing();

#==========================================================================
# Helpers
#==========================================================================

sub find_in_path {
    my ($name) = @_;
    for my $d (split /:/, $ENV{PATH} // '') {
        return "$d/$name" if length $d && -f "$d/$name" && -x _;
    }
    return undef;
}

# Installs t/browser/node_modules from the lock file when it is missing or
# holds another playwright-core version than the lock.
sub install_node_modules {
    my $want = eval {
        decode_json(slurp("$DIR/package-lock.json"))
            ->{packages}{'node_modules/playwright-core'}{version};
    };
    ok($want, 't/browser/package-lock.json pins playwright-core')
        or return 0;
    my $have = eval {
        decode_json(slurp("$DIR/node_modules/playwright-core/package.json"))
            ->{version};
    };
    return 1 if defined $have && $have eq $want;

    if (!ok($npm, 'npm is in PATH (t/browser/node_modules must be installed)')) {
        diag("npm is missing: $how");
        return 0;
    }
    my $log = servroot() . '/npm-ci.log';
    my $t0 = time;
    my ($st, $o, $e) = run_bounded([$npm, 'ci', '--no-audit', '--no-fund'],
        dir => $DIR, limit => $NPM_LIMIT, stdout => $log, stderr => $log,
        env => { npm_config_update_notifier => 'false' });
    if (!ok($st == 0 && -f "$DIR/node_modules/playwright-core/package.json",
            "npm ci in t/browser (playwright-core $want)"))
    {
        diag("npm ci: " . describe($st) . "\n" . tail($o, 40));
        return 0;
    }
    note(sprintf 'npm ci: %.1f s', time - $t0);
    return 1;
}

# Runs argv with a time limit; returns (wait status or -1 on timeout,
# stdout, stderr).  On timeout the process and everything it started
# (found by parent pid, before it is killed) get TERM, then KILL.
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
    my @todo = ($root);
    while (defined(my $p = shift @todo)) {
        my @k = @{ $kids{$p} || [] };
        push @out, @k;
        push @todo, @k;
    }
    return @out;
}

sub describe {
    my ($st) = @_;
    return 'timed out' if $st == -1;
    return 'killed by signal ' . ($st & 127) if $st & 127;
    return 'exit status ' . ($st >> 8);
}

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

sub cookie {
    my ($list, $name) = @_;
    my ($c) = grep { $_->{name} eq $name } @{ $list || [] };
    return $c;
}

sub cookie_value {
    my $c = cookie(@_);
    return $c ? $c->{value} : undef;
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
