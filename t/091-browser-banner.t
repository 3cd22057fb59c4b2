# A real browser: Debian's Chromium, driven by playwright-core from
# t/browser/banner.js, meets the reminder banner of a small shop page.  Two
# returning visitors with a cart seeded in Redis (one product with an image
# served by nginx, one with a hostile name): the banner is shown as a
# region "Your cart" with both items (the hostile name stays text), the
# right total and nothing requested outside the shop; a keyboard-only
# visitor dismisses it with Tab and Enter and is sent back to the page,
# now without it (meta "dismissed" in Redis); another clicks "View your
# cart" with the mouse and goes through the click endpoint to the cart page
# (meta "clicked", today's clicks:banner).
#
# Needs chromium, node and npm: when one is missing this test FAILS, it does
# not skip (see Test::Retarget::Browser, which also installs
# t/browser/node_modules from the pinned package-lock.json).
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis;
use Test::Retarget::Campaign;
use Test::Retarget::Browser;
use Time::HiRes qw(time);

my $RUN_LIMIT = 100;          # seconds for the whole browser script
my $FLUSH     = 3;            # seconds for a counter to reach Redis
my $PAGE      = '/shop.html';
my $CART      = '/cart.html';
my $H         = 3600;

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
<style>body{font:16px/1.5 sans-serif;margin:2rem;min-height:900px}
h2{text-transform:uppercase;color:#a00}img{border:4px solid red}</style>
</head>
<body>
<header><h1>Test shop</h1>
<nav><a href="/shop.html">Home</a> <a href="/cart.html">Cart</a></nav>
</header>
<main>
<article><h2>Blue mug</h2><p>A mug, blue. 12.50 EUR</p>
<button type="button">Add to cart</button></article>
</main>
</body>
</html>
HTML

write_file('cart.html', <<'HTML');
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Your cart</title>
<link rel="icon" href="data:,"></head>
<body><h1>Your cart</h1><p>2 items</p></body></html>
HTML

write_file('i/mug.svg', <<'SVG');
<svg xmlns="http://www.w3.org/2000/svg" width="112" height="112" viewBox="0 0 112 112">
<rect width="112" height="112" fill="#dbeafe"/>
<rect x="28" y="30" width="44" height="54" rx="6" fill="#2563eb"/>
<path d="M72 42h10a10 10 0 0 1 0 20H72" fill="none" stroke="#2563eb" stroke-width="7"/>
</svg>
SVG

#==========================================================================
# Prerequisites: fail, never skip
#==========================================================================

if (!browser_prerequisites()) {
    done_testing();
    exit;
}

#==========================================================================
# nginx with its own Redis; two visitors with the same cart
#==========================================================================

use_redis();

my $started = start_nginx({
    http_config => campaign_http(),
    config => q{
        retarget on;
        retarget_campaign on link=/cart.html;
        retarget_delay 1m;
        retarget_frequency 3 1d;
        location / { }
        location /retarget/ { retarget_control; }
        location = /cart.html { retarget_campaign off; }
    },
});
ok($started, 'nginx started');
ok($started && wait_up(), "nginx's Redis link is up");
if (!$started) {
    done_testing();
    exit;
}

my $HOSTILE = '<img src=x onerror=alert(1)>';
my ($A, $B) = map { rvid("browser-banner-$_") } qw(A B);
my $now = NOW;
for my $vid ($A, $B) {
    seed($vid, cart_updated => $now - 2 * $H,
         # the newest line first in the banner: the mug
         'c:MUG' => cart_line(ms => ($now - 2 * $H) * 1000, qty => 2,
                              price => '12.50', name => 'Blue mug',
                              image => '/i/mug.svg', url => '/p/mug.html'),
         'c:HACK' => cart_line(ms => ($now - 2 * $H) * 1000 - 1000, qty => 1,
                               price => '3.99', name => $HOSTILE,
                               url => '/p/hack.html'));
}

#==========================================================================
# The browser run
#==========================================================================

my $base = 'http://127.0.0.1:' . server_port();
my $out  = servroot();
unlink "$out/browser-banner.png", "$out/browser-banner-focus.png";

my $run = run_browser_script('banner.js',
    ['--base', $base, '--out', $out,
     '--vid-a', signed_cookie($A, $SECRET),
     '--vid-b', signed_cookie($B, $SECRET),
     '--consent', signed_consent('ack', $SECRET)], limit => $RUN_LIMIT);

my $r = browser_result($run);
if (!$r) {
    stop_nginx();
    done_testing();
    exit;
}

my $S = scenarios_ran($r, qw(dismiss_keyboard click_through));

my $CLICK = "/retarget/click?v=banner&to=$CART";

# 1. The banner as visitor A sees it
{
    my $s = $S->{dismiss_keyboard} || {};
    is($s->{status}, 200, 'A: page status 200');
    is($s->{regions}, 1, 'A: one region "Your cart"');
    ok($s->{visible}, 'A: the banner is visible');
    like($s->{source} // '', qr{</main>\n<div class="rt-banner" role="region" aria-label="Your cart".*</div></body>\n</html>\n\z}s,
         'A: in the source, the banner sits just before </body>');
    like($s->{source} // '', qr{>&lt;img src=x onerror=alert\(1\)&gt;</a>},
         'A: in the source, the hostile name is escaped');
    my $d = $s->{dom} || {};
    ok($d->{in_viewport}, 'A: the banner is in the viewport');
    is($d->{parent}, 'BODY', 'A: the banner is a child of <body>');
    ok($d->{last_in_body}, 'A: the banner is the last element of <body>');
    is($d->{notices}, 0, 'A: no privacy notice (consent "ack")');
    is($d->{heading}, '3 items left in your cart', 'A: the heading counts 3 items');
    my @items = @{ $d->{items} || [] };
    is(scalar @items, 2, 'A: two items');
    my ($mug, $hack) = @items;
    $mug ||= {}; $hack ||= {};
    is($mug->{name}, 'Blue mug', 'A: first item: the mug (newest line)');
    is($mug->{detail}, "2 \x{d7} 12.50", 'A: the mug: 2 x 12.50');
    is($mug->{line_total}, '25.00', 'A: the mug: line total 25.00');
    is($mug->{href}, '/retarget/click?v=banner&to=/p/mug.html',
       'A: the mug links through the click endpoint');
    my $img = $mug->{img} || {};
    is($img->{src}, '/i/mug.svg', "A: the mug's image");
    is($img->{alt}, 'Blue mug', "A: the mug's image has an alt text");
    ok($img->{complete} && $img->{width} > 0, "A: the mug's image loaded")
        or diag(explain $img);
    is($hack->{name}, $HOSTILE, 'A: the hostile name is shown as text');
    is($hack->{detail}, "1 \x{d7} 3.99", 'A: the hostile item: 1 x 3.99');
    is($hack->{line_total}, '3.99', 'A: the hostile item: line total 3.99');
    is_deeply($hack->{elements}, [qw(I DIV A SMALL B)],
              'A: the hostile item: a placeholder, no element from its name');
    is($d->{imgs_in_banner}, 1, 'A: one <img> in the banner (the mug)');
    is_deeply($d->{imgs_in_page}, ['/i/mug.svg'], 'A: no injected <img> in the page');
    is_deeply($d->{scripts_in_banner}, ['overlay'],
              'A: no <script> in the banner but its own (Escape)');
    ok($s->{items_hidden}, 'A: the items are hidden until the summary is opened');
    is_deeply($d->{event_attrs}, [], 'A: no event handler attribute in the banner');
    is($d->{total}, 'Total 28.99', 'A: the total is 28.99');
    is_deeply($d->{page_styles}, { h2 => 'none rgb(31, 41, 51)', img_border => 'none' },
              "A: the page's h2 and img rules do not reach the banner");
    is_deeply($d->{cta}, { text => 'View your cart', href => $CLICK },
              'A: the main link, through the click endpoint, to link=');
    is_deeply($d->{buttons}, [{ label => 'Dismiss reminder', text => "\x{d7}" }],
              'A: one button, the dismiss');
    is_deeply($d->{forms}, [{ method => 'post', action => "/retarget/dismiss?to=$PAGE" }],
              'A: the dismiss form posts back to this page');
    is($s->{dismiss_buttons}, 1, 'A: a button named "Dismiss reminder" (accessible name)');
    is($s->{cta_links}, 1, 'A: a link named "View your cart" (accessible name)');
    unlike($s->{document_cookie} // '', qr/rt_vid=/,
           'A: document.cookie does not show rt_vid');

    ok($s->{screenshot_bytes}, 'A: a screenshot of the banner')
        and diag("screenshot of the banner: $s->{screenshot}");

    # keyboard only
    ok($s->{reached_dismiss}, 'A: Tab reaches the dismiss button')
        or diag('focus path: ' . join(' > ', map { $_ // '(body)' } @{ $s->{focus_path} || [] }));
    note("A: $s->{tabs} Tab presses to reach the dismiss button") if $s->{reached_dismiss};
    unlike($s->{dismiss_outline} // 'none', qr/^none/,
           'A: the focused dismiss button has a visible outline');
    is_deeply(nav_summary($s->{navigations}),
              ["POST /retarget/dismiss?to=$PAGE 303 $base$PAGE", "GET $PAGE 200"],
              'A: Enter posts dismiss, the browser follows the 303 back');
    is($s->{url_after}, "$base$PAGE", 'A: back on the same page');
    is($s->{banner_after}, 0, 'A: the banner is gone');
    is($s->{url_after_reload}, "$base$PAGE", 'A: reload stays on the page');
    is($s->{banner_after_reload}, 0, 'A: still gone after reload');

    my $m = hash(meta_key($A));
    my $from = int($s->{dismissed_from} // 0);
    ok(defined $m->{dismissed} && $m->{dismissed} =~ /^\d+\z/
       && $m->{dismissed} >= $from && $m->{dismissed} <= ($s->{dismissed_until} // 0) + 1,
       'A: meta "dismissed" is the time of the Enter')
        or diag("dismissed: " . ($m->{dismissed} // 'undef')
                . " expected in [$from, " . ($s->{dismissed_until} // '?') . ']');
    like($m->{seen} // '', qr/^\d+ banner\z/, 'A: meta "seen" records the impression');
    is($m->{reminders}, 1, 'A: one reminder counted in the period');
    ok(!exists $m->{clicked}, 'A: no click recorded');
}

# 2. Visitor B clicks "View your cart"
{
    my $s = $S->{click_through} || {};
    ok($s->{visible}, 'B: the banner is visible');
    is(($s->{dom} || {})->{total}, 'Total 28.99', 'B: the same cart');
    is_deeply(nav_summary($s->{navigations}),
              ["GET $CLICK 302 $base$CART", "GET $CART 200"],
              'B: the click goes through the click endpoint (302) to the cart page');
    is($s->{url_after}, "$base$CART", 'B: on the cart page');
    is($s->{title_after}, 'Your cart', 'B: the cart page loaded');
    is($s->{any_banner_after}, 0, 'B: no banner on the cart page (campaign off)');

    my $m = hash(meta_key($B));
    my ($ts) = ($m->{clicked} // '') =~ /^(\d+) banner\z/;
    ok(defined $ts && $ts >= int($s->{clicked_from} // 0)
       && $ts <= ($s->{clicked_until} // 0) + 1,
       'B: meta "clicked" is "TS banner", TS the time of the click')
        or diag('clicked: ' . ($m->{clicked} // 'undef'));
    ok(!exists $m->{dismissed}, 'B: not dismissed');

    # the worker flushes its counters once a second
    my $until = ($s->{clicked_until} // time) + $FLUSH;
    my $st = {};
    eventually(sub {
        $st = stats();
        return ($st->{'clicks:banner'} // 0) >= 1 && ($st->{dismissals} // 0) >= 1
               && ($st->{'impressions:banner'} // 0) >= 2;
    }, $until - time > 0.2 ? $until - time : 0.2);
    is($st->{'clicks:banner'}, 1,
       "rt:stats:" . today() . " clicks:banner is 1 within ${FLUSH}s of the click")
        or diag(explain $st);
    is($st->{dismissals}, 1, 'dismissals is 1');
    is($st->{'impressions:banner'}, 2, 'impressions:banner is 2 (A once, B once)');
}

# What nginx decided for each page of the two visitors
{
    my @lines = log_lines_since(0);
    my %got;
    for (@lines) {
        my ($decision, $variant, $count, $total, $vid, $st, $uri) = split /\|/, $_, 7;
        next unless defined $uri && $uri =~ m{^/(?:shop|cart)\.html\z};
        push @{ $got{$vid // ''} }, "$uri $st $decision $variant $count $total";
    }
    is_deeply($got{$A}, ["$PAGE 200 shown banner 3 28.99",
                         "$PAGE 200 dismissed - 3 28.99",
                         "$PAGE 200 dismissed - 3 28.99"],
              'campaign.log: A was shown the banner, then it was dismissed')
        or diag(join "\n", @lines);
    is_deeply($got{$B}, ["$PAGE 200 shown banner 3 28.99",
                         "$CART 200 nothing - - -"],
              'campaign.log: B was shown the banner, the cart page had none')
        or diag(join "\n", @lines);
}

# Nothing left 127.0.0.1, no script ran, and nginx saw the browser.
nothing_foreign($r);
is_deeply($r->{dialogs}, [], 'no dialog was opened (the hostile name did not run)');
my @reqs = @{ $r->{requests} || [] };
ok((grep { m{^GET \Q$base\E/i/mug\.svg\z} } @reqs), 'the browser loaded the mug image')
    or diag(join "\n", @reqs);
is_deeply([ grep { m{^\w+ \Q$base\E/x\b} } @reqs ], [],
          'the browser did not request the hostile "x"');
my $access = slurp("$out/logs/access.log");
like($access, qr{"POST /retarget/dismiss\?to=\Q$PAGE\E HTTP/1\.1" 303 .*Chrome/}m,
     'access.log: Chromium posted dismiss and got 303');
like($access, qr{"GET \Q$CLICK\E HTTP/1\.1" 302 .*Chrome/}m,
     'access.log: Chromium got the click 302');

is(stop_nginx(), 1, 'nginx exited on QUIT');
check_error_log_clean('browser run');

done_testing();
