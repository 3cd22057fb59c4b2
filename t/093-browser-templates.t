# Every shipped template as a visitor sees it, in a real browser (Debian's
# Chromium, driven by playwright-core from t/browser/templates.js): the
# built-in notice and banner, and every template in conf-examples/ (each
# *.html file, a notice or a banner by what it prints), on a small shop
# page, at desktop (1280x800) and phone (390x844) size.  The banners are
# rendered for four returning visitors in each of three currencies (EUR,
# USD, JPY: retarget_currency per location): a cart of one item, a cart
# of three items old enough for an incentive, one product viewed, two
# products viewed; the notices for a new visitor, in notice and in opt-in
# mode.
#
# What is asserted is the text the visitor sees of everything the module
# injected (innerText, whitespace collapsed): exactly the expected text
# for the shipped templates; for any template no "{{" or "}}", no stray
# text outside the injected elements, the products' names, the money in
# the location's currency, "1 item" / "3 items" (never "item(s)", "1
# items" or "3 item"), the incentive's code, "1 day" (retarget_retention
# 1d), nothing cut off by the viewport.  The share of the viewport each
# one covers is printed (the overlay's own test, t/094, bounds it).
#
# An overlay that folds its content into <details> is read as it first
# shows and again with its disclosures opened (as a visitor who taps
# them): the exact text is the opened one.
#
# Screenshots: t/browser/screenshots/templates-NAME-VIEWPORT[-open].png.
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
use Cwd qw(abs_path);
use File::Path qw(make_path);
use JSON::PP ();

my $RUN_LIMIT = 200;          # seconds for the whole browser script
my $SHOTS     = "$BROWSER_DIR/screenshots";
my $H         = 3600;
my $ROOT      = abs_path('.');

#==========================================================================
# The shop page (written first: that also sets up servroot)
#==========================================================================

my $SHOP = <<'HTML';
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Harbor shop</title>
<link rel="icon" href="data:,">
<style>
body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#222;background:#faf7f2}
header{display:flex;justify-content:space-between;align-items:center;padding:1rem 1.5rem;background:#fff;border-bottom:1px solid #ddd}
header a{color:#0b5d57;margin-left:1rem}
main{max-width:60rem;margin:0 auto;padding:1.5rem;min-height:1200px}
.product{display:flex;flex-wrap:wrap;gap:1.5rem}
.product .pic{width:280px;height:280px;background:#dbeafe;border-radius:12px}
.price{font-size:1.4rem;font-weight:700}
button.add{font:inherit;padding:.6rem 1.4rem;border-radius:999px;border:0;background:#0f766e;color:#fff}
</style>
</head>
<body>
<header><strong>Harbor &amp; Co.</strong>
<nav><a href="/">Shop</a><a href="/cart.html">Cart</a></nav></header>
<main id="shop">
<h1>Lighthouse T-shirt</h1>
<div class="product"><div class="pic"></div>
<div><p class="price">24.00</p><p>Soft cotton, printed by hand.</p>
<button type="button" class="add">Add to cart</button></div></div>
</main>
</body>
</html>
HTML

write_file('cart.html', "<!DOCTYPE html><title>Cart</title><p>Your cart</p>\n");
write_file('privacy.html', "<!DOCTYPE html><title>Privacy</title><p>Privacy</p>\n");
write_file('i/mug.svg', <<'SVG');
<svg xmlns="http://www.w3.org/2000/svg" width="112" height="112" viewBox="0 0 112 112">
<rect width="112" height="112" fill="#dbeafe"/>
<rect x="28" y="30" width="44" height="54" rx="6" fill="#2563eb"/>
<path d="M72 42h10a10 10 0 0 1 0 20H72" fill="none" stroke="#2563eb" stroke-width="7"/>
</svg>
SVG

if (!browser_prerequisites()) {
    done_testing();
    exit;
}

#==========================================================================
# The templates: the built-in ones and every conf-examples/*.html
#==========================================================================

# name => { kind => banner|notice, file => path or undef (built-in) }
my %TPL = (builtin => { kind => 'banner', cart_names => 1 },
           'builtin-notice' => { kind => 'notice' });
for my $f (sort glob("$ROOT/conf-examples/*.html")) {
    my $text = slurp($f);
    (my $name = $f) =~ s{.*/|\.html\z}{}g;
    # a notice speaks of consent; a banner of the cart or viewed products
    my $kind = $text =~ /\{\{\s*[#^]\s*optin\b|\{\{\s*retention_days\b/ ? 'notice'
             : $text =~ /\{\{\s*[#^]?\s*(?:cart|viewed|browse)\b/ ? 'banner' : undef;
    ok($kind, "conf-examples/$name.html is a template of a notice or a banner")
        or next;
    # whether it names the products of a cart (a one-line bar may not)
    $TPL{$name} = { kind => $kind, file => $f,
                    cart_names => $text =~ /\{\{#cart\}\}.*?\{\{\s*name\s*\}\}/s };
}
my @BANNERS = sort grep { $TPL{$_}{kind} eq 'banner' } keys %TPL;
my @NOTICES = sort grep { $TPL{$_}{kind} eq 'notice' } keys %TPL;
note("banners: @BANNERS; notices: @NOTICES");

#==========================================================================
# nginx: a location per banner and currency, per notice and consent mode
#==========================================================================

my @CURRENCIES = qw(EUR USD JPY);

my $locations = '';
for my $t (@BANNERS) {
    for my $cur (@CURRENCIES) {
        my $variant = $TPL{$t}{file} ? "retarget_variant $t 1 $TPL{$t}{file};" : '';
        $locations .= "location /$t/$cur/ { retarget_currency $cur; $variant }\n";
        write_file("$t/$cur/shop.html", $SHOP);
    }
}
for my $t (@NOTICES) {
    for my $mode (qw(notice optin)) {
        my $notice = $TPL{$t}{file} ? "retarget_notice $TPL{$t}{file};" : '';
        $locations .= "location /$t/$mode/ { retarget_consent $mode; $notice }\n";
        write_file("$t/$mode/shop.html", $SHOP);
    }
}

use_redis();

my $started = start_nginx({
    http_config => campaign_http(timeout => '2s') . q{
        retarget_retention 1d;
    },
    config => qq{
        retarget on;
        retarget_privacy_url /privacy.html;
        retarget_campaign on link=/cart.html;
        retarget_delay 1m;
        retarget_frequency 1000 1d pages=1000;
        retarget_incentive 1h SAVE10 "10% off your order";
        location / { }
        location = /cart.html { retarget_campaign off; }
        location /retarget/ { retarget_control; }
        $locations
    },
});
ok($started, 'nginx started');
ok($started && wait_up(), "nginx's Redis link is up");
if (!$started) {
    done_testing();
    exit;
}

#==========================================================================
# The visitors, in each currency
#==========================================================================

# what the shop charges, in each currency (stored as the shop sent it)
my %PRICES = (EUR => ['12.50', '9.00'], USD => ['12.50', '9.00'],
              JPY => ['1200', '900']);
# and what a visitor should read
my $EUR = "\x{20ac}";
my $YEN = "\x{a5}";
my %MONEY = (
    EUR => { mug => "${EUR}12.50", mug2 => "${EUR}25.00", nb => "${EUR}9.00",
             total3 => "${EUR}34.00", total1 => "${EUR}9.00" },
    USD => { mug => '$12.50', mug2 => '$25.00', nb => '$9.00',
             total3 => '$34.00', total1 => '$9.00' },
    JPY => { mug => "${YEN}1200", mug2 => "${YEN}2400", nb => "${YEN}900",
             total3 => "${YEN}3300", total1 => "${YEN}900" },
);
my @SCENARIOS = qw(cart1 cart3 viewed1 viewed2);

my $now = NOW;
my %VID;
for my $cur (@CURRENCIES) {
    my ($mug, $nb) = @{ $PRICES{$cur} };
    my %line = (
        mug => { price => $mug, name => 'Blue mug', image => '/i/mug.svg',
                 url => '/p/mug.html' },
        nb  => { price => $nb, name => 'Tide notebook', url => '/p/notebook.html' },
    );
    my %v = map { $_ => rvid("templates-$_-$cur") } @SCENARIOS;
    # a cart of one, idle 30 minutes: no incentive yet
    seed($v{cart1}, cart_updated => $now - 1800,
         'c:NB' => cart_line(ms => ($now - 1800) * 1000, qty => 1, %{ $line{nb} }));
    # three items, idle 2 hours, reminded before: the incentive
    seed($v{cart3}, cart_updated => $now - 2 * $H, last_reminder => $now - $H,
         'c:MUG' => cart_line(ms => ($now - 2 * $H) * 1000, qty => 2, %{ $line{mug} }),
         'c:NB' => cart_line(ms => ($now - 3 * $H) * 1000, qty => 1, %{ $line{nb} }));
    seed($v{viewed1},
         'v:MUG' => view_line(ms => ($now - 2 * $H) * 1000, %{ $line{mug} }));
    seed($v{viewed2},
         'v:MUG' => view_line(ms => ($now - 2 * $H) * 1000, %{ $line{mug} }),
         'v:NB' => view_line(ms => ($now - 3 * $H) * 1000, %{ $line{nb} }));
    $VID{$cur} = \%v;
}

my $consent = signed_consent('ack', $SECRET);
my @cases;
for my $t (@BANNERS) {
    for my $cur (@CURRENCIES) {
        for my $s (@SCENARIOS) {
            push @cases, { name => "$t-$s-$cur", path => "/$t/$cur/shop.html",
                           vid => signed_cookie($VID{$cur}{$s}, $SECRET),
                           consent => $consent,
                           tpl => $t, scenario => $s, currency => $cur };
        }
    }
}
for my $t (@NOTICES) {
    for my $mode (qw(notice optin)) {
        push @cases, { name => "$t-$mode", path => "/$t/$mode/shop.html",
                       vid => '', consent => '', tpl => $t, scenario => $mode };
    }
}

#==========================================================================
# What a visitor should read
#==========================================================================

# exactly, for the shipped templates; whitespace collapsed.  $open: read
# with its disclosures opened: the built-in overlays of the overlay work
# (issue 11) fold their content into <details> and put the dismiss button
# after the main link and the incentive after the items
sub expected {
    my ($c, $open) = @_;
    my ($t, $s, $cur) = @$c{qw(tpl scenario currency)};
    my $m = $MONEY{$cur // 'EUR'};
    my $why = 'Why am I seeing this?';
    my %text = (
        builtin => {
            cart1 => "1 item left in your cart \x{d7} Tide notebook 1 \x{d7} $m->{nb} "
                   . "$m->{nb} Total $m->{total1} View your cart $why",
            cart3 => "3 items left in your cart \x{d7} 10% off your order Use code SAVE10 "
                   . "at checkout. Blue mug 2 \x{d7} $m->{mug} $m->{mug2} Tide notebook "
                   . "1 \x{d7} $m->{nb} $m->{nb} Total $m->{total3} View your cart $why",
            viewed1 => "Still thinking about this one? \x{d7} Blue mug $m->{mug} "
                     . "Take another look $why",
            viewed2 => "Still thinking about these? \x{d7} Blue mug $m->{mug} "
                     . "Tide notebook $m->{nb} Take another look $why",
        },
        'banner-minimal' => {
            cart1 => "You have 1 item waiting in your cart ($m->{total1}). "
                   . 'View your cart Not now',
            cart3 => "You have 3 items waiting in your cart ($m->{total3}). 10% off "
                   . 'your order with code SAVE10. View your cart Not now',
            viewed1 => 'Still thinking about Blue mug? Take another look Not now',
            viewed2 => 'Still thinking about Blue mug, Tide notebook? Take another look Not now',
        },
        'builtin-notice' => {
            notice => 'This shop remembers your visit. A first-party cookie (rt_vid) '
                    . 'lets it record the products you view and your cart, to remind '
                    . 'you of them on later visits. The data stays with this shop, is '
                    . 'shared with no one, and is deleted after 1 day without a visit. '
                    . 'You can opt out at any time. OK Opt out Privacy policy',
            optin => 'May this shop remember your visit? With your permission it sets '
                   . 'a cookie (rt_vid) and records the products you view and your '
                   . 'cart, to remind you of them on later visits. The data stays '
                   . 'with this shop, is shared with no one, and is deleted after 1 '
                   . 'day without a visit. Allow No, thanks Privacy policy',
        },
        notice => {
            notice => 'This shop remembers your cart A first-party cookie lets us keep '
                    . 'your cart and the products you viewed, to remind you of them on '
                    . 'later visits. Nothing is shared with anyone, and it is deleted '
                    . 'after 1 day without a visit. OK Opt out How we use your data',
            optin => 'May we remember your cart? With your permission this shop sets '
                   . 'one first-party cookie and keeps your cart and the products you '
                   . 'viewed, to remind you of them when you come back. Nothing is '
                   . 'shared with anyone, and it is deleted after 1 day without a '
                   . 'visit. Allow No, thanks How we use your data',
        },
    );
    if ($open && $t eq 'builtin') {
        %{ $text{builtin} } = (
            cart1 => "1 item left in your cart Tide notebook 1 \x{d7} $m->{nb} $m->{nb} "
                   . "Total $m->{total1} View your cart \x{d7} $why",
            cart3 => "3 items left in your cart Blue mug 2 \x{d7} $m->{mug} $m->{mug2} "
                   . "Tide notebook 1 \x{d7} $m->{nb} $m->{nb} 10% off your order Use "
                   . "code SAVE10 at checkout. Total $m->{total3} View your cart \x{d7} $why",
            viewed1 => "Still thinking about this one? Blue mug $m->{mug} "
                     . "Take another look \x{d7} $why",
            viewed2 => "Still thinking about these? Blue mug $m->{mug} "
                     . "Tide notebook $m->{nb} Take another look \x{d7} $why",
        );
    }
    if ($open && $t eq 'builtin-notice') {
        s/^(This shop remembers your visit\.|May this shop remember your visit\?) /$1 Details /
            for values %{ $text{'builtin-notice'} };
    }
    return $text{$t} ? $text{$t}{$s} : undef;
}

# collapses whitespace, but not the no-break space money may hold; the
# spaces templates.js puts around buttons and links (innerText has none
# between two buttons side by side) go before punctuation
sub collapse {
    my ($s) = @_;
    $s //= '';
    $s =~ s/[ \t\r\n\f]+/ /g;
    $s =~ s/ (?=[.,?!)])//g;
    $s =~ s/\( /(/g;
    $s =~ s/^ | \z//g;
    return $s;
}

#==========================================================================
# The browser run
#==========================================================================

make_path($SHOTS);
unlink glob("$SHOTS/templates-*.png");   # also the -open ones
my $cases_file = servroot() . '/templates-cases.json';
open my $fh, '>', $cases_file or die "$cases_file: $!";
print $fh JSON::PP->new->canonical->encode(\@cases);
close $fh;

my $base = 'http://127.0.0.1:' . server_port();
my $run = run_browser_script('templates.js',
    ['--base', $base, '--out', servroot(), '--shots', $SHOTS,
     '--cases', $cases_file], limit => $RUN_LIMIT);
my $r = browser_result($run);
if (!$r) {
    stop_nginx();
    done_testing();
    exit;
}

my @VIEWPORTS = qw(desktop phone);
my $S = scenarios_ran($r, map { $_->{name} } @cases);

my @coverage;
for my $c (@cases) {
    my $name = $c->{name};
    my $res = $S->{$name} || {};
    is($res->{status}, 200, "$name: 200");

    for my $vp (@VIEWPORTS) {
        my $v = $res->{$vp} || {};
        # as it first shows, and with its disclosures opened (if any)
        my @states = ([ "$name-$vp", $v ]);
        push @states, [ "$name-$vp-open", $v->{open} ] if $v->{open};

        for my $st (@states) {
            my ($n, $o) = @$st;
            my $d = $o->{dom} || {};
            my $text = collapse($o->{text});
            my @els = @{ $d->{elements} || [] };
            is(scalar @els, 1, "$n: one element injected")
                or diag(explain [ map { "$_->{tag}.$_->{cls}" } @els ]);
            my $e = $els[0] || {};
            is($e->{role}, 'region', "$n: a region");
            ok($e->{visible}, "$n: visible");
            is_deeply($d->{stray}, [], "$n: no stray text beside it");
            is_deeply($e->{cut} || [], [], "$n: no text cut off by the viewport");
            ok(!$d->{page_scrolls_sideways}, "$n: the page does not scroll sideways");
            ok($o->{screenshot_bytes}, "$n: a screenshot");
            unlike($text, qr/\{\{|\}\}/, "$n: no {{ or }}");
            unlike($text, qr/item\(s\)|\b1 items\b|\b(?:[02-9]|\d\d+) item\b|\b1 days\b|\b0 days?\b|undefined|NaN/,
                   "$n: singular and plural agree with the numbers");
            push @coverage, sprintf '%-40s %5.1f %%', $n, $e->{covers} // -1;
        }

        # all it says, once opened
        my ($n, $o) = @{ $states[-1] };
        my $text = collapse($o->{text});
        if ($TPL{$c->{tpl}}{kind} eq 'banner') {
            my $m = $MONEY{$c->{currency}};
            my $sc = $c->{scenario};
            my @names = $sc eq 'cart1' ? ('Tide notebook')
                      : $sc eq 'viewed1' ? ('Blue mug') : ('Blue mug', 'Tide notebook');
            # a one-line bar may count a cart's products without naming them
            @names = () if $sc =~ /^cart/ && !$TPL{$c->{tpl}}{cart_names};
            like($text, qr/\Q$_\E/, "$n: names $_") for @names;
            if ($sc =~ /^cart/) {
                my $total = $sc eq 'cart1' ? $m->{total1} : $m->{total3};
                like($text, qr/\Q$total\E/, "$n: the total, $total");
                my $items = $sc eq 'cart1' ? '1 item' : '3 items';
                like($text, qr/\b$items\b/, "$n: $items");
            }
            if ($sc eq 'cart3') {
                like($text, qr/SAVE10/, "$n: the incentive's code");
            } else {
                unlike($text, qr/SAVE10/, "$n: no incentive");
            }
            # money only in the location's currency
            my %other = (EUR => $EUR, USD => '$', JPY => $YEN);
            delete $other{$c->{currency}};
            my $signs = join '', values %other;
            unlike($text, qr/[\Q$signs\E]/, "$n: no other currency's sign");
            if ($c->{currency} eq 'JPY') {
                unlike($text, qr/\d\.\d/, "$n: yen without decimals");
            } else {
                unlike($text, qr/(?<![\d$EUR$YEN\$.])\d+\.\d\d(?!\d)/,
                       "$n: no amount without its currency");
            }
        }
        my $want = expected($c, exists $v->{open});
        is($text, $want, "$n: the text a visitor reads") if defined $want;
    }
}
note("share of the viewport each covers:\n" . join "\n", @coverage);

nothing_foreign($r);
is_deeply($r->{dialogs}, [], 'no dialog was opened');
is_deeply($r->{page_errors}, [], 'no page script threw');
my @shots = @{ $r->{screenshots} || [] };
cmp_ok(scalar(grep { -s $_ } @shots), '>=', 2 * @cases,
       sprintf('%d screenshots (%d cases, desktop and phone, and opened)',
               scalar @shots, scalar @cases));
diag("screenshots: $SHOTS/templates-*.png");

is(stop_nginx(), 1, 'nginx exited on QUIT');
check_error_log_clean('browser run');

done_testing();
