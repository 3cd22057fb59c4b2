# A real browser: Debian's Chromium, driven by playwright-core from
# t/browser/notice.js, goes through the transparency notice of a small shop
# page: a new visitor sees it (and cannot read the HttpOnly visitor cookie),
# a keyboard-only visitor dismisses it with Tab and Enter, another opts out
# with the mouse, and in opt-in mode nothing is set until "Allow".
#
# Needs chromium, node and npm: when one is missing this test FAILS, it does
# not skip (see Test::Retarget::Browser, which also installs
# t/browser/node_modules from the pinned package-lock.json).
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Browser;

my $RUN_LIMIT = 60;           # seconds for the whole browser script
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

if (!browser_prerequisites()) {
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

my $run = run_browser_script('notice.js',
    ['--base', $base, '--optin', $optin, '--out', $out], limit => $RUN_LIMIT);

stop_nginx();
check_error_log_clean('browser run');

my $r = browser_result($run);
if (!$r) {
    done_testing();
    exit;
}

my $S = scenarios_ran($r, qw(new_visitor keyboard_ack optout optin screenshot));

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
    like(cookie_value($s->{cookies}, 'rt_vid_consent') // '', qr/^ack\.[\w-]{22}\z/,
       'keyboard: consent cookie rt_vid_consent=ack (signed)');
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
    like(cookie_value($s->{cookies}, 'rt_vid_consent') // '', qr/^out\.[\w-]{22}\z/,
       'opt out: consent cookie rt_vid_consent=out (signed)');
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
    like(cookie_value($s->{cookies}, 'rt_vid_consent') // '', qr/^in\.[\w-]{22}\z/,
       'opt-in: consent cookie rt_vid_consent=in (signed)');
}

# 5. Screenshot, for humans (not asserted)
diag("screenshot of the notice: $S->{screenshot}{path}")
    if $S->{screenshot} && $S->{screenshot}{bytes};

# Nothing left 127.0.0.1, and nginx saw the browser's form posts.
nothing_foreign($r);
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

sub cookie {
    my ($list, $name) = @_;
    my ($c) = grep { $_->{name} eq $name } @{ $list || [] };
    return $c;
}

sub cookie_value {
    my $c = cookie(@_);
    return $c ? $c->{value} : undef;
}
