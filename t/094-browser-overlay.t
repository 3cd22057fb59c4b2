# Point 6 of issue 11, measured in a real browser: Debian's Chromium,
# driven by playwright-core from t/browser/overlay.js, loads a product page
# and a checkout page of a small shop (a header with its cart link, a big
# product image, a price, "Add to cart", a form) for returning visitors with
# a cart, at desktop (1280x800) and phone (390x844) sizes, for every
# retarget_banner_position and with and without the notice, and measures:
#
#   - the share of the viewport the notice and the banner cover together
#     (the union of their boxes, clipped to the viewport): at most 30 % on
#     the phone;
#   - the banner never meets the page's <header> (top: offset=64px, the
#     header's height);
#   - the layout shifts caused by the overlays (PerformanceObserver
#     "layout-shift", buffered): 0, and the largest contentful paint is
#     never in them;
#   - every focusable element of the page, reached with Tab, is never
#     entirely hidden under an overlay (WCAG 2.2 SC 2.4.11), also without
#     script; the focus leaves the overlays (no trap); their controls show
#     a focus outline; their text has a contrast of at least 4.5:1; each
#     has a polite live region and none an assertive one;
#   - Escape dismisses the banner (then the notice), saying so politely;
#     the server has it dismissed (Redis meta, reload).
#
# The measured numbers are printed (note lines, diag for the summary).
# Screenshots go to t/browser/screenshots/overlay-*.png.
#
# Needs chromium, node and npm: when one is missing this test FAILS, it does
# not skip (see Test::Retarget::Browser).
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis;
use Test::Retarget::Campaign;
use Test::Retarget::Browser;
use File::Path qw(make_path);
use JSON::PP qw(encode_json);

my $RUN_LIMIT = 320;          # seconds for the whole browser script
my $SHOTS     = "$BROWSER_DIR/screenshots";
my $H         = 3600;
my @POSITIONS = ('bottom-right', 'bottom-left', 'bottom', 'top');
# a shorter run while working on one: TEST_OVERLAY_POSITIONS=top,bottom
my @RUN = split /,/, ($ENV{TEST_OVERLAY_POSITIONS} // join ',', @POSITIONS);
my $HEADER_H  = 64;           # px: the shop's header, the top offset
my $MINIMAL   = "$BROWSER_DIR/../../conf-examples/banner-minimal.html";

#==========================================================================
# The shop: a product page and a checkout page, the same in every position
#==========================================================================

sub shop_page {
    my ($title, $main) = @_;
    return <<"HTML";
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title - Harbor</title>
<link rel="icon" href="data:,">
<style>
body{margin:0;font:16px/1.5 Georgia,serif;color:#222;background:#fafaf7}
header{position:sticky;top:0;z-index:10;height:${HEADER_H}px;box-sizing:border-box;
 display:flex;align-items:center;justify-content:space-between;padding:0 16px;
 background:#fff;border-bottom:1px solid #ddd}
header nav{display:flex;gap:12px}
header a{color:#0b4f6c}
main{max-width:960px;margin:0 auto;padding:16px}
.crumbs a{margin-right:8px}
.product{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:24px}
.product img{width:100%;height:auto;display:block}
.price{font-size:1.5em;font-weight:bold}
.buy{display:flex;gap:8px;align-items:center}
.more{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:12px;padding:0;list-style:none}
.more li{background:#fff;border:1px solid #ddd;padding:12px;height:120px}
form.checkout label{display:block;margin:0 0 14px}
form.checkout input{display:block;box-sizing:border-box;width:100%;max-width:420px;padding:8px;font:inherit}
footer{padding:24px 16px;border-top:1px solid #ddd;display:flex;gap:16px;flex-wrap:wrap}
\@media(max-width:700px){.product{grid-template-columns:1fr}}
</style>
</head>
<body>
<header><a class="brand" href="./product.html">Harbor &amp; Co.</a>
<nav aria-label="Main"><a href="./product.html">Shop</a><a href="./account.html">Account</a><a class="cart-link" href="./cart.html">Cart (3)</a></nav>
</header>
<main>
$main
</main>
<footer><a href="./privacy.html">Privacy</a><a href="./terms.html">Terms</a><a href="./contact.html">Contact</a></footer>
</body>
</html>
HTML
}

my $PRODUCT = shop_page('Harbor Mug', <<'MAIN');
<nav class="crumbs" aria-label="Breadcrumb"><a href="./product.html">Shop</a><a href="./product.html">Mugs</a></nav>
<article class="product">
<img src="/i/mug-big.svg" alt="Harbor Mug" width="480" height="360">
<div>
<h1>Harbor Mug</h1>
<p class="price">€12.00</p>
<p>A stoneware mug glazed in sea blue, made in small batches by the harbor.</p>
<div class="buy"><label>Quantity <input type="number" value="1" min="1" size="3"></label>
<button type="button">Add to cart</button></div>
<p><a href="./cart.html">View cart</a> · <a href="./shipping.html">Shipping</a></p>
</div>
</article>
<h2>More from the shop</h2>
<ul class="more">
<li><a href="./p1.html">Tide Notebook</a></li><li><a href="./p2.html">Lighthouse T-shirt</a></li>
<li><a href="./p3.html">Harbor Print</a></li><li><a href="./p4.html">Rope Coaster</a></li>
<li><a href="./p5.html">Sea Glass Vase</a></li><li><a href="./p6.html">Gull Postcards</a></li>
</ul>
MAIN

my $CHECKOUT = shop_page('Checkout', <<'MAIN');
<h1>Checkout</h1>
<form class="checkout" action="./done.html">
<label>Name <input name="name" value="Demo Visitor"></label>
<label>Email <input name="email" value="visitor@example.com"></label>
<label>Address <input name="address" value="1 Quay Street"></label>
<label>City <input name="city" value="Harbor Town"></label>
<label>Postcode <input name="zip" value="12345"></label>
<label>Country <input name="country" value="Nowhere"></label>
<label>Phone <input name="phone" value="0123 456789"></label>
<label>Card <input name="card" value="4242 4242 4242 4242"></label>
<label><input type="checkbox" name="news"> Send me news</label>
<button type="submit">Place order</button>
</form>
MAIN

write_file('i/mug-big.svg', <<'SVG');
<svg xmlns="http://www.w3.org/2000/svg" width="480" height="360" viewBox="0 0 480 360">
<rect width="480" height="360" fill="#dbeafe"/>
<rect x="150" y="90" width="150" height="190" rx="18" fill="#2563eb"/>
<path d="M300 140h40a40 40 0 0 1 0 80h-40" fill="none" stroke="#2563eb" stroke-width="22"/>
</svg>
SVG
write_file('i/mug.svg', <<'SVG');
<svg xmlns="http://www.w3.org/2000/svg" width="112" height="112" viewBox="0 0 112 112">
<rect width="112" height="112" fill="#dbeafe"/>
<rect x="28" y="30" width="44" height="54" rx="6" fill="#2563eb"/>
</svg>
SVG
for my $pos (@POSITIONS, 'minimal') {
    write_file("$pos/product.html", $PRODUCT);
    write_file("$pos/checkout.html", $CHECKOUT);
}

#==========================================================================
# Prerequisites: fail, never skip
#==========================================================================

if (!browser_prerequisites()) {
    done_testing();
    exit;
}

#==========================================================================
# nginx: one location per position
#==========================================================================

use_redis();

my $locations = join "\n", map {
    my $o = $_ eq 'top' ? " offset=${HEADER_H}px" : '';
    "        location /$_/ { retarget_banner_position $_$o; }";
} @POSITIONS;

my $started = start_nginx({
    http_config => campaign_http(),
    config => qq{
        retarget on;
        retarget_privacy_url /privacy.html;
        retarget_campaign on link=/cart.html;
        retarget_delay 1m;
        retarget_frequency 1000 1d pages=1000;
        retarget_incentive 1h SAVE10 "10% off your order";
        location / { }
$locations
        location /minimal/ {
            retarget_variant minimal 1 $MINIMAL;
        }
        location /retarget/ { retarget_control; }
    },
});
ok($started, 'nginx started');
ok($started && wait_up(), "nginx's Redis link is up");
if (!$started) {
    done_testing();
    exit;
}

# A fresh visitor for every page the browser loads (a reminder is counted
# per visit): each has the same three-line cart, two hours old.
my $VISITORS = 130;
my $now = NOW;
my @vids;
for my $i (1 .. $VISITORS) {
    my $vid = rvid("overlay-$i");
    seed($vid, cart_updated => $now - 2 * $H,
         'c:MUG' => cart_line(ms => ($now - 2 * $H) * 1000, qty => 2,
                              price => '12.00', name => 'Harbor Mug',
                              image => '/i/mug.svg', url => '/p/mug.html'),
         'c:NOTE' => cart_line(ms => ($now - 2 * $H) * 1000 - 1000, qty => 1,
                               price => '9.50', name => 'Tide Notebook',
                               url => '/p/note.html'));
    push @vids, { vid => $vid, cookie => signed_cookie($vid, $SECRET) };
}

my $out = servroot();
my $visitors_file = "$out/visitors.json";
open my $fh, '>', $visitors_file or die "$visitors_file: $!\n";
print $fh encode_json([ map { $_->{cookie} } @vids ]);
close $fh;

make_path($SHOTS);
unlink glob "$SHOTS/overlay-*.png";

my $base = 'http://127.0.0.1:' . server_port();
my $run = run_browser_script('overlay.js',
    ['--base', $base, '--out', $out, '--shots', $SHOTS,
     '--visitors', $visitors_file,
     '--consent', signed_consent('ack', $SECRET),
     '--positions', join(',', @RUN), '--header', $HEADER_H],
    limit => $RUN_LIMIT);

my $r = browser_result($run);
if (!$r) {
    stop_nginx();
    done_testing();
    exit;
}

#==========================================================================
# The measurements
#==========================================================================

my @loads = @{ $r->{loads} || [] };
is(scalar @loads, @RUN * 2 * 2 * 2 + 2 * 2 + 2 * 2,
   'every position, viewport, notice or not, page; without script; the minimal variant')
    or diag(join "\n", map { $_->{name} } @loads);

my (%worst, @table);
for my $l (@loads) {
    my $n = $l->{name};
    if ($l->{error}) {
        fail("$n: ran without error");
        diag($l->{error});
        next;
    }
    my $m = $l->{m} || {};
    ok($m->{banner}, "$n: the banner is shown");
    is(!!$m->{notice}, !!$l->{notice}, "$n: the notice " . ($l->{notice} ? 'is' : 'is not') . ' shown');

    my $cov = $m->{covered_pct} // 100;
    if ($l->{viewport} eq 'phone') {
        cmp_ok($cov, '<=', 30, "$n: notice and banner cover $cov % of the viewport (<= 30 %)");
    }
    is($m->{banner_header_overlap} // -1, 0, "$n: the banner does not meet the header");
    ok($m->{banner_in_viewport}, "$n: the banner is wholly in the viewport");
    if ($l->{notice}) {
        is($m->{overlap} // -1, 0, "$n: the banner and the notice do not overlap");
    }
    is($m->{cls_overlay} // -1, 0, "$n: layout shift caused by the overlays: 0");
    is($m->{cls} // -1, 0, "$n: cumulative layout shift of the page: 0");
    diag(explain $l->{perf}{shifts}) if $m->{cls};
    ok($m->{lcp} && !$m->{lcp}{in_overlay},
       "$n: the largest contentful paint is the page's (" . ($m->{lcp} ? $m->{lcp}{what} : 'none') . ')');
    cmp_ok($m->{min_contrast} // 0, '>=', 4.5,
           "$n: text contrast in the overlays >= 4.5:1 (min $m->{min_contrast})")
        or diag(explain $m->{low_contrast});
    ok($m->{live_polite} && !$m->{live_assertive},
       "$n: a polite live region in each overlay, no assertive one");

    my $f = $l->{focus} || {};
    if ($l->{position} eq 'minimal') {
        # the template's own focus styles are the operator's
        $f->{no_outline} = [];
    }
    cmp_ok($f->{page_focusables} // 0, '>', 5, "$n: tabbed through $f->{page_focusables} controls of the page");
    is_deeply($f->{hidden} || ['?'], [], "$n: no focused control of the page is entirely hidden (SC 2.4.11)");
    ok($f->{left_overlays}, "$n: the focus leaves the overlays (no trap)");
    is_deeply($f->{no_outline} || ['?'], [], "$n: every overlay control shows a focus outline");

    push @table, sprintf '%-38s covered %5.1f %%  cls %.4f (overlays %.4f)  lcp %-22s contrast %.2f  '
        . 'focus: %d page controls, %d partly covered, %d hidden',
        $n, $cov, $m->{cls} // -1, $m->{cls_overlay} // -1,
        ($m->{lcp} ? $m->{lcp}{what} : '-'), $m->{min_contrast} // 0,
        $f->{page_focusables} // 0, scalar @{ $f->{partly} || [] }, scalar @{ $f->{hidden} || [] };
    my $k = "$l->{viewport} " . ($l->{notice} ? 'notice+banner' : 'banner');
    $worst{$k} = $cov if ($worst{$k} // -1) < $cov;
}
diag("measured in Chromium $r->{browser}:");
diag($_) for @table;
diag(sprintf 'largest covered share, %s: %.1f %%', $_, $worst{$_}) for sort keys %worst;

# Escape
my $esc = $r->{escape} || {};
{
    ok(!$esc->{error}, 'escape: ran without error') or diag($esc->{error});
    ok($esc->{before_banner} && $esc->{before_notice}, 'escape: notice and banner shown');
    is($esc->{after_first}{banner}, 0, 'Escape (focus in the banner): the banner is gone');
    is($esc->{after_first}{notice}, 1, 'the notice stays');
    is($esc->{after_first}{status}, 'Reminder dismissed.', 'the live region says "Reminder dismissed."');
    is($esc->{after_first}{status_live}, 'status', 'said politely (role=status)');
    is($esc->{after_second}{notice}, 0, 'a second Escape (focus nowhere): the notice is gone');
    is($esc->{after_second}{status}, 'Privacy notice closed.', 'the live region says "Privacy notice closed."');
    is($esc->{url_after}, $esc->{url_before}, 'the same page');
    is($esc->{navigations_during}, 0, 'no navigation: the script posted the forms itself');
    is($esc->{reload}{banner}, 0, 'after a reload: no banner (dismissed on the server)');
    is($esc->{reload}{notice}, 0, 'after a reload: no notice (acknowledged)');
    my $m = hash(meta_key($vids[$esc->{visitor}]{vid}));
    like($m->{dismissed} // '', qr/^\d+\z/, 'Redis: meta "dismissed" is set');
    is($esc->{shop_escape}, 'kept', "Escape in the shop's own field is the shop's: the banner stays");
}

# details on demand, on the phone
my $det = $r->{details} || {};
ok(!$det->{error}, 'details: ran without error') or diag($det->{error});
is($det->{items_before}, 0, 'phone: the items are hidden at first');
is($det->{items_after}, 2, 'phone: the summary opens them (no script needed: <details>)');
note("phone, details open: the banner covers $det->{covered_pct} % of the viewport") if defined $det->{covered_pct};

nothing_foreign($r);
is_deeply($r->{page_errors} || [], [], 'no page script threw');
my @shots = grep { -s $_ } @{ $r->{screenshots} || [] };
is(scalar @shots, 6 * @RUN + 9, scalar(@shots) . " screenshots in $SHOTS");
diag("screenshots: $SHOTS/overlay-*.png");

is(stop_nginx(), 1, 'nginx exited on QUIT');
check_error_log_clean('browser run');

done_testing();
