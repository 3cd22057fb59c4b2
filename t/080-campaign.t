# The reminder's decision rules, through real nginx and a real Redis, in
# the order of the design: dismissed, purchased, cart (stale and
# out-of-stock lines left out) or browse reminder, too_soon / too_late,
# no_cart, capped, holdout, shown; then the variant, the incentive, and the
# writes a page leaves behind (impression fields, stale fields deleted,
# pool codes pinned) and the daily counters.
#
# Each rule has a visitor that triggers it and a control visitor that does
# not.  State is seeded straight into rt:{vid}:meta in the design's formats,
# and time is controlled through the stored timestamps: nothing here sleeps
# to let time pass.  The decision of every page comes from a dedicated
# access log ($retarget_decision and friends), which is written before
# nginx closes the connection.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis;
use Test::Retarget::Campaign;
use Time::HiRes qw(sleep time);
use IO::Socket::INET;

use_redis();


my $PAGE = "<html><head><title>Shop</title></head>"
         . "<body><h1>Shop</h1><p>content</p></body></html>\n";

my $RETENTION = 30 * 86400;

# the server: static pages, the control endpoints, $campaign directives
sub server {
    my ($campaign) = @_;
    return qq{
        retarget on;
        $campaign
        location / { }
        location /retarget/ { retarget_control; }
    };
}

sub rsection {
    my ($name, $campaign, $code, %o) = @_;
    section($name, { http_config => campaign_http(%o),
                     config => server($campaign // '') },
            { 'page.html' => $PAGE }, $code);
}

sub decision_is {
    my ($r, $want, $name) = @_;
    is($r->{decision}, $want, "$name: decision $want")
        or diag("status $r->{status}; log: @{ $r->{log_lines} }; "
                . ($r->{error} // ''));
    is($r->{status}, 200, "$name: 200");
    like($r->{body}, qr{<p>content</p>.*</body></html>\n\z}s,
         "$name: the page is whole");
}

sub shown {
    my ($r, $name) = @_;
    decision_is($r, 'shown', $name);
    my $b = banner_of($r->{body});
    ok(defined $b, "$name: a banner") or diag($r->{body});
    return $b // '';
}

sub not_shown {
    my ($r, $want, $name) = @_;
    decision_is($r, $want, $name);
    unlike($r->{body}, qr/rt-banner/, "$name: no banner");
}

# the names a built-in banner lists, in order
sub banner_names {
    my ($b) = @_;
    return [ $b =~ m{<a[^>]*>([^<]*)</a><small>}g ];
}

sub meta { hash(meta_key($_[0])) }

sub near {
    my ($t, $want, $name) = @_;
    ok(defined $t && $t =~ /^\d+$/ && abs($t - $want) <= 3, $name)
        or diag('got ' . ($t // 'undef') . ", want about $want");
}

# the page's writes come after the response: wait for a field's value
sub field_becomes {
    my ($vid, $field, $want, $name) = @_;
    eventually_is(sub { redis_cmd('HGET', meta_key($vid), $field) },
                  $want, $name);
}

sub counters_are {
    my ($want, $name) = @_;
    settle();
    my $s = stats();
    for my $k (sort keys %$want) {
        is($s->{$k} // 0, $want->{$k}, "$name: counter $k");
    }
}

my $H = 3600;

#--------------------------------------------------------------------------
# shown: the basic reminder and what it writes
#--------------------------------------------------------------------------

rsection('a reminder is shown and remembered', '', sub {
    my ($A, $B) = (rvid('shown-A'), rvid('shown-B'));
    my $now = NOW;
    seed($A, first_seen => $now - 86400, cart_updated => $now - 2 * $H,
         'c:MUG' => cart_line(ms => ($now - 2 * $H) * 1000, qty => 2,
                              price => '12.50', name => 'Big Mug',
                              image => '/img/mug.png', url => '/p/mug'));
    seed($B, first_seen => $now - 86400, last_seen => $now - 60);

    my $r = page($A);
    my $b = shown($r, 'A');
    is($r->{variant}, 'banner', 'A: $retarget_variant is the default variant');
    is($r->{count}, 2, 'A: $retarget_cart_count');
    is($r->{total}, '25.00', 'A: $retarget_cart_total');
    like($b, qr{Items left in your cart: 2}, 'A: the count in the heading');
    like($b, qr{>Big Mug</a><small>2 &times; 12.50</small></div><b>25.00</b>},
         'A: the line');
    like($b, qr{Total <b>25\.00</b>}, 'A: the total');
    like($r->{headers}{'cache-control'}[0] // '', qr/^private/,
         'A: Cache-Control private');

    # the impression: one HSET (and EXPIRE) after the response
    field_becomes($A, 'reminders', 1, 'A: reminders 1');
    my $m = meta($A);
    like($m->{seen} // '', qr/^\d+ banner$/, 'A: seen "TS banner"');
    near((split ' ', $m->{seen} // '')[0], $now, 'A: seen is now');
    near($m->{last_reminder}, $now, 'A: last_reminder is now');
    near($m->{period_start}, $now, 'A: period_start is now');
    is($m->{variant}, 'banner', 'A: variant stored');
    is($m->{cart_updated}, $now - 2 * $H, 'A: cart_updated untouched');
    ok(defined $m->{'c:MUG'}, 'A: the cart line is kept');
    my $ttl = redis_cmd('TTL', meta_key($A));
    ok($ttl > $RETENTION - 60 && $ttl <= $RETENTION,
       'A: the hash carries the retention TTL') or diag("TTL $ttl");

    # B: a returning visitor with nothing to remind of
    $r = page($B);
    not_shown($r, 'no_cart', 'B');
    is($r->{count}, 0, 'B: $retarget_cart_count 0');
    is($r->{total}, '0.00', 'B: $retarget_cart_total 0.00');
    is($r->{variant}, '-', 'B: no $retarget_variant');
    sleep 0.3;
    is_deeply(meta($B), { first_seen => $now - 86400, last_seen => $now - 60 },
              'B: nothing written');

    # a returning visitor whose hash does not exist at all
    my $C = rvid('shown-C');
    $r = page($C);
    not_shown($r, 'no_cart', 'C (no hash)');
    sleep 0.3;
    is(redis_cmd('EXISTS', meta_key($C)), 0, 'C: no hash created');

    counters_are({ 'impressions:banner' => 1, 'suppressed:timing' => 0,
                   'suppressed:frequency' => 0 }, 'shown');
});

#--------------------------------------------------------------------------
# dismissed
#--------------------------------------------------------------------------

rsection('dismissed: suppressed for the frequency period', q{
    retarget_frequency 3 2h;
}, sub {
    my ($A, $B) = (rvid('dis-A'), rvid('dis-B'));
    my $now = NOW;
    for my $v ($A, $B) {
        seed($v, cart_updated => $now - 3 * $H,
             'c:SOCK' => cart_line(ms => ($now - 3 * $H) * 1000,
                                   name => 'Sock', url => '/p/sock'));
    }
    seed($A, dismissed => $now - $H);           # within 2h
    seed($B, dismissed => $now - 2 * $H - 60);  # 2h ago: over

    my $r = page($A);
    not_shown($r, 'dismissed', 'A, dismissed 1h ago');
    is($r->{variant}, '-', 'A: no variant');
    shown(page($B), 'B, dismissed 2h ago');

    # dismissed comes first: even a cart that is too fresh says dismissed
    seed($A, cart_updated => $now - 60);
    not_shown(page($A), 'dismissed', 'A, fresh cart');

    # no impression was written for A
    sleep 0.3;
    ok(!defined redis_cmd('HGET', meta_key($A), 'last_reminder'),
       'A: no last_reminder');
    ok(!defined redis_cmd('HGET', meta_key($A), 'reminders'),
       'A: no reminders');

    # the dismissal ages out (moved back): A is reminded again
    seed($A, dismissed => $now - 3 * $H, cart_updated => $now - 3 * $H);
    shown(page($A), 'A, dismissal over');

    counters_are({ 'impressions:banner' => 2, 'suppressed:timing' => 0 },
                 'dismissed');
});

#--------------------------------------------------------------------------
# purchased
#--------------------------------------------------------------------------

rsection('purchased: no reminder right after a purchase', '', sub {
    my $now = NOW;
    my $ms = $now * 1000;
    my %v = map { $_ => rvid("pur-$_") } qw(A A2 B C D);

    # A bought a minute ago; lines written after the purchase's clear
    # (MS > cart_cleared) and a cart idle long enough for a reminder
    seed($v{A}, purchased => $now - 60, cart_cleared => $ms - 60_000,
         cart_updated => $now - 2 * $H,
         'c:CAP' => cart_line(ms => $ms - 30_000, name => 'Cap'));
    # A2 bought 2h ago, and the cart was last changed before that
    seed($v{A2}, purchased => $now - 2 * $H, cart_updated => $now - 3 * $H,
         cart_cleared => ($now - 4 * $H) * 1000,
         'c:CAP' => cart_line(ms => ($now - 3 * $H) * 1000, name => 'Cap'));
    # B bought 3h ago and filled a new cart 1h ago: reminded
    seed($v{B}, purchased => $now - 3 * $H, cart_updated => $now - $H,
         cart_cleared => ($now - 3 * $H) * 1000,
         'c:CAP' => cart_line(ms => ($now - $H) * 1000, name => 'Cap'));
    # C bought a minute ago, cart empty, viewed products: no browse reminder
    seed($v{C}, purchased => $now - 60, cart_cleared => $ms - 60_000,
         'v:HAT' => view_line(ms => ($now - 2 * $H) * 1000, name => 'Hat'));
    # D bought 2h ago, cart empty, viewed since: the browse reminder
    seed($v{D}, purchased => $now - 2 * $H,
         cart_cleared => ($now - 2 * $H) * 1000,
         'v:HAT' => view_line(ms => ($now - $H) * 1000, name => 'Hat'));

    my $r = page($v{A});
    not_shown($r, 'purchased', 'A: the page right after the purchase');
    is($r->{count}, 1, 'A: the line is still counted in the variable');
    not_shown(page($v{A}), 'purchased', 'A: and the next one');
    not_shown(page($v{A2}), 'purchased', 'A2: cart older than the purchase');
    shown(page($v{B}), 'B: a new cart after the purchase');
    not_shown(page($v{C}), 'purchased', 'C: no browse reminder either');
    my $b = shown(page($v{D}), 'D: browse reminder long after a purchase');
    like($b, qr/aria-label="Recently viewed"/, 'D: it is the browse one');

    # purchased comes before the timing rules: A's fresh cart still says so
    seed($v{A}, cart_updated => $now - 10);
    not_shown(page($v{A}), 'purchased', 'A: fresh cart, purchase first');

    # a purchase longer ago than the delay with a cart changed since: shown
    seed($v{A}, purchased => $now - 2 * $H, cart_updated => $now - $H);
    shown(page($v{A}), 'A: later, with a cart changed since');

    sleep 0.3;
    for (qw(A2 C)) {
        ok(!defined redis_cmd('HGET', meta_key($v{$_}), 'last_reminder'),
           "$_: no impression written");
    }
    counters_are({ 'impressions:banner' => 3, 'suppressed:timing' => 0 },
                 'purchased');
});

#--------------------------------------------------------------------------
# too_soon / too_late
#--------------------------------------------------------------------------

rsection('too_soon and too_late: retarget_delay and retarget_window', q{
    retarget_delay 1h;
    retarget_window 2d;
    retarget_frequency 10 1d;
}, sub {
    my $now = NOW;
    my %v = map { $_ => rvid("time-$_") } qw(A B C D E F G);
    my $line = sub { cart_line(ms => ($_[0]) * 1000, name => 'Lamp') };

    seed($v{A}, cart_updated => $now - 50 * 60, 'c:LAMP' => $line->($now - 50 * 60));
    seed($v{B}, cart_updated => $now - 2 * $H, 'c:LAMP' => $line->($now - 2 * $H));
    seed($v{C}, cart_updated => $now - 3 * 86400, 'c:LAMP' => $line->($now - 3 * 86400));
    # no cart_updated: the newest line's time
    seed($v{D}, 'c:LAMP' => $line->($now - 10 * 60),
                'c:OLD' => $line->($now - 5 * $H));
    seed($v{E}, 'c:LAMP' => $line->($now - 5 * $H));
    # browse reminders: the newest view's time
    seed($v{F}, 'v:DESK' => view_line(ms => ($now - 10 * 60) * 1000,
                                      name => 'Desk'),
                'v:OLD' => view_line(ms => ($now - 5 * $H) * 1000));
    seed($v{G}, 'v:DESK' => view_line(ms => ($now - 3 * 86400) * 1000,
                                      name => 'Desk'));

    my $r = page($v{A});
    not_shown($r, 'too_soon', 'A: idle 50m < 1h');
    is($r->{count}, 1, 'A: cart counted in the variable anyway');
    shown(page($v{B}), 'B: idle 2h');
    not_shown(page($v{C}), 'too_late', 'C: idle 3d > 2d');
    not_shown(page($v{D}), 'too_soon', 'D: newest line 10m old');
    shown(page($v{E}), 'E: the only line 5h old');
    not_shown(page($v{F}), 'too_soon', 'F: browse, newest view 10m old');
    not_shown(page($v{G}), 'too_late', 'G: browse, newest view 3d old');

    # the edges, a few seconds off so that the clock cannot tick across
    seed($v{A}, cart_updated => NOW - 3600 + 5);
    not_shown(page($v{A}), 'too_soon', 'A: 5s before the delay');
    seed($v{A}, cart_updated => NOW - 3600 - 5);
    shown(page($v{A}), 'A: 5s after the delay');
    seed($v{C}, cart_updated => NOW - 2 * 86400 + 5);
    shown(page($v{C}), 'C: 5s before the end of the window');
    seed($v{C}, cart_updated => NOW - 2 * 86400 - 5);
    not_shown(page($v{C}), 'too_late', 'C: 5s after the end of the window');

    sleep 0.3;
    for (qw(D F G)) {
        ok(!defined redis_cmd('HGET', meta_key($v{$_}), 'last_reminder'),
           "$_: no impression written");
    }
    # too_soon: A D F A, too_late: C G C
    counters_are({ 'suppressed:timing' => 7, 'impressions:banner' => 4,
                   'suppressed:frequency' => 0 }, 'timing');
});

#--------------------------------------------------------------------------
# no_cart, stale lines, malformed fields
#--------------------------------------------------------------------------

rsection('stale cart lines are ignored, then deleted', '', sub {
    my $now = NOW;
    my $cleared = ($now - 3 * $H) * 1000;
    my ($A, $B, $C) = map { rvid("stale-$_") } qw(A B C);
    my %lines = (
        'c:OLD'  => cart_line(ms => $cleared - 1000, name => 'Old', qty => 5),
        'c:EDGE' => cart_line(ms => $cleared, name => 'Edge', qty => 7),
        'c:NEW'  => cart_line(ms => $cleared + 1000, name => 'New', qty => 2,
                              price => '3.00'),
    );
    seed($A, cart_cleared => $cleared, cart_updated => $now - 2 * $H, %lines);
    seed($B, cart_updated => $now - 2 * $H, %lines);   # never cleared
    seed($C, cart_cleared => $cleared, cart_updated => $now - 2 * $H,
         'c:OLD' => $lines{'c:OLD'});                   # only stale lines

    my $r = page($A);
    my $b = shown($r, 'A');
    is_deeply(banner_names($b), ['New'], 'A: only the line after the clear');
    is($r->{count}, 2, 'A: count without stale lines');
    is($r->{total}, '6.00', 'A: total without stale lines');
    eventually_is(sub { redis_cmd('HEXISTS', meta_key($A), 'c:OLD') }, 0,
                  'A: c:OLD deleted after the page');
    is(redis_cmd('HEXISTS', meta_key($A), 'c:EDGE'), 0,
       'A: c:EDGE (MS == cart_cleared) deleted');
    is(redis_cmd('HEXISTS', meta_key($A), 'c:NEW'), 1, 'A: c:NEW kept');

    $r = page($B);
    $b = shown($r, 'B');
    is($r->{count}, 14, 'B: every line counts');
    is(scalar @{ banner_names($b) }, 3, 'B: three lines');
    sleep 0.3;
    is(scalar(grep { /^c:/ } keys %{ meta($B) }), 3, 'B: nothing deleted');

    $r = page($C);
    not_shown($r, 'no_cart', 'C: only stale lines');
    is($r->{count}, 0, 'C: count 0');
    eventually_is(sub { redis_cmd('HEXISTS', meta_key($C), 'c:OLD') }, 0,
                  'C: deleted even without a reminder');
    near(redis_cmd('HGET', meta_key($C), 'cart_updated'), $now - 2 * $H,
         'C: the rest of the hash stays');
});

rsection('fields that do not parse are ignored and deleted', '', sub {
    my $now = NOW;
    my ($A, $B) = map { rvid("bad-$_") } qw(A B);
    my $ms = ($now - 2 * $H) * 1000;
    seed($A, cart_updated => $now - 2 * $H,
         'c:GOOD'  => cart_line(ms => $ms, name => 'Good'),
         'c:SHORT' => "$ms\t1\t2.00\tShort",               # 4 of 6 parts
         'c:LONG'  => cart_line(ms => $ms) . "\textra",     # 7 parts
         'c:ZERO'  => cart_line(ms => $ms, qty => 0),
         'c:NEG'   => cart_line(ms => $ms, qty => -2),
         'c:NOMS'  => cart_line(ms => 'x'),
         'v:BAD'   => "garbage",
         'reminders' => 'lots', period_start => 'yesterday');
    seed($B, cart_updated => $now - 2 * $H,
         'c:GOOD' => cart_line(ms => $ms, name => 'Good'));

    my $r = page($A);
    my $b = shown($r, 'A: the bad fields do not stop the reminder');
    is_deeply(banner_names($b), ['Good'], 'A: only the good line');
    is($r->{count}, 1, 'A: count 1');
    for my $f (qw(c:SHORT c:LONG c:ZERO c:NEG c:NOMS v:BAD)) {
        eventually_is(sub { redis_cmd('HEXISTS', meta_key($A), $f) }, 0,
                      "A: $f deleted");
    }
    is(redis_cmd('HEXISTS', meta_key($A), 'c:GOOD'), 1, 'A: c:GOOD kept');
    field_becomes($A, 'reminders', 1,
                  'A: an unreadable count starts from 0');
    shown(page($B), 'B');
});

#--------------------------------------------------------------------------
# out of stock
#--------------------------------------------------------------------------

rsection('out-of-stock products are left out', q{
    retarget_frequency 100 1d;
}, sub {
    my $now = NOW;
    my ($A, $B, $C) = map { rvid("stock-$_") } qw(A B C);
    my $ms = ($now - 2 * $H) * 1000;
    seed($A, cart_updated => $now - 2 * $H,
         'c:RED'  => cart_line(ms => $ms, name => 'Red', qty => 1,
                               price => '5.00'),
         'c:BLUE' => cart_line(ms => $ms - 1000, name => 'Blue', qty => 2,
                               price => '7.00'),
         'v:TEAL' => view_line(ms => ($now - $H) * 1000, name => 'Teal'));
    seed($B, cart_updated => $now - 2 * $H,
         'c:GREEN' => cart_line(ms => $ms, name => 'Green'));
    seed($C, 'v:RED' => view_line(ms => ($now - $H) * 1000, name => 'Red'),
             'v:PINK' => view_line(ms => ($now - 2 * $H) * 1000,
                                   name => 'Pink'));

    my $r = page($A);
    is_deeply(banner_names(shown($r, 'A, all in stock')), [qw(Red Blue)],
              'A: both lines');
    is($r->{count}, 3, 'A: count 3');

    redis_cmd('SADD', 'rt:out_of_stock', 'RED');
    sleep 1.2;      # each worker reads the set once a second

    $r = page($A);
    is_deeply(banner_names(shown($r, 'A, RED sold out')), ['Blue'],
              'A: RED left out');
    is($r->{count}, 2, 'A: count without RED');
    is($r->{total}, '14.00', 'A: total without RED');
    is_deeply(banner_names(shown(page($B), 'B (GREEN)')), ['Green'],
              'B: not affected');
    my $b = shown(page($C), 'C, browse');
    is_deeply(banner_names($b), ['Pink'], 'C: the sold-out view left out');

    redis_cmd('SADD', 'rt:out_of_stock', 'BLUE');
    sleep 1.2;
    $r = page($A);
    $b = shown($r, 'A, the whole cart sold out: browse reminder');
    like($b, qr/aria-label="Recently viewed"/, 'A: browse banner');
    is_deeply(banner_names($b), ['Teal'], 'A: the viewed product');
    is($r->{count}, 0, 'A: nothing in stock in the cart');

    redis_cmd('HDEL', meta_key($A), 'v:TEAL');
    not_shown(page($A), 'no_cart', 'A: nothing in stock at all');
    sleep 0.3;
    is(redis_cmd('HEXISTS', meta_key($A), 'c:RED'), 1,
       'A: sold-out lines are kept, not deleted');

    redis_cmd('SREM', 'rt:out_of_stock', 'RED', 'BLUE');
    sleep 1.2;
    is_deeply(banner_names(shown(page($A), 'A, back in stock')),
              [qw(Red Blue)], 'A: both lines again');
});

#--------------------------------------------------------------------------
# viewed products: the browse reminder, the 8 kept
#--------------------------------------------------------------------------

rsection('browse reminder: viewed products not in the cart', '', sub {
    my $now = NOW;
    my ($A, $B) = map { rvid("browse-$_") } qw(A B);
    seed($A, 'v:DESK' => view_line(ms => ($now - $H) * 1000, name => 'Desk',
                                   price => '99.00', image => '/i/desk.png',
                                   url => '/p/desk'),
             'v:CHAIR' => view_line(ms => ($now - 2 * $H) * 1000,
                                    name => 'Chair', url => '/p/chair'));
    # B viewed what is in the cart: a cart reminder, the view not listed
    seed($B, cart_updated => $now - 2 * $H,
         'c:DESK' => cart_line(ms => ($now - 2 * $H) * 1000, name => 'Desk',
                               url => '/p/desk'),
         'v:DESK' => view_line(ms => ($now - $H) * 1000, name => 'Desk'));

    my $r = page($A);
    my $b = shown($r, 'A');
    like($b, qr/aria-label="Recently viewed"/, 'A: browse banner');
    like($b, qr/Still thinking about these\?/, 'A: browse heading');
    is_deeply(banner_names($b), [qw(Desk Chair)], 'A: newest view first');
    unlike($b, qr/<p class="rt-banner-tot"/, 'A: no cart total');
    like($b, qr{class="rt-banner-cta" href="/retarget/click\?v=banner&amp;to=/p/desk"},
         'A: the main link goes to the newest view');
    is($r->{count}, 0, 'A: $retarget_cart_count 0');
    is($r->{total}, '0.00', 'A: $retarget_cart_total 0.00');
    field_becomes($A, 'reminders', 1, 'A: a browse reminder counts too');

    $b = shown(page($B), 'B');
    like($b, qr/aria-label="Your cart"/, 'B: cart banner');
    is_deeply(banner_names($b), ['Desk'], 'B: listed once, as a cart line');
});

rsection('viewed products: the 8 newest are kept', '', sub {
    my $now = NOW;
    my ($A, $B) = map { rvid("keep-$_") } qw(A B);
    # ten views, P1 the oldest; A idle 1h (browse), B has 8
    seed($A, map { ("v:P$_" => view_line(ms => ($now - $H - 600 * (10 - $_))
                                              * 1000, name => "P$_")) } 1 .. 10);
    seed($B, map { ("v:P$_" => view_line(ms => ($now - $H - 600 * (10 - $_))
                                              * 1000, name => "P$_")) } 3 .. 10);

    my $b = shown(page($A), 'A, ten views');
    is_deeply(banner_names($b), [qw(P10 P9 P8 P7)],
              'A: the banner lists the 4 newest');
    for my $f (qw(v:P1 v:P2)) {
        eventually_is(sub { redis_cmd('HEXISTS', meta_key($A), $f) }, 0,
                      "A: $f (beyond 8) deleted");
    }
    is_deeply([ sort grep { /^v:/ } keys %{ meta($A) } ],
              [ sort map { "v:P$_" } 3 .. 10 ], 'A: the 8 newest kept');

    shown(page($B), 'B, eight views');
    sleep 0.3;
    is(scalar(grep { /^v:/ } keys %{ meta($B) }), 8, 'B: nothing deleted');
});

rsection('cart lines beyond 50', '', sub {
    my $now = NOW;
    my $A = rvid('many-A');
    seed($A, cart_updated => $now - 2 * $H,
         map { ("c:S$_" => cart_line(ms => ($now - 3 * $H + $_) * 1000,
                                     name => "S$_")) } 1 .. 52);
    my $r = page($A);
    my $b = shown($r, 'A, 52 lines');
    is_deeply(banner_names($b), [ map { "S$_" } reverse 33 .. 52 ],
              'A: the banner lists the 20 newest lines');
    sleep 0.5;
    # the banner shows the newest lines; the others stay the visitor's
    is(scalar(grep { /^c:/ } keys %{ meta($A) }), 52,
       'A: no cart line deleted');
});

#--------------------------------------------------------------------------
# retarget_frequency
#--------------------------------------------------------------------------

rsection('retarget_frequency: n per period, then capped', q{
    retarget_frequency 2 1h;
}, sub {
    my $now = NOW;
    my ($A, $B) = map { rvid("freq-$_") } qw(A B);
    my %cart = (cart_updated => $now - 3 * $H,
                'c:PEN' => cart_line(ms => ($now - 3 * $H) * 1000,
                                     name => 'Pen'));
    seed($A, %cart);
    # B: many reminders, in a period that is over
    seed($B, %cart, reminders => 5, period_start => $now - 2 * $H,
         last_reminder => $now - 2 * $H + 60);

    shown(page($A), 'A page 1');
    field_becomes($A, 'reminders', 1, 'A: reminders 1');
    my $start = redis_cmd('HGET', meta_key($A), 'period_start');
    near($start, $now, 'A: period started now');

    shown(page($A), 'A page 2');
    field_becomes($A, 'reminders', 2, 'A: reminders 2');
    is(redis_cmd('HGET', meta_key($A), 'period_start'), $start,
       'A: same period');

    my $r = page($A);
    not_shown($r, 'capped', 'A page 3');
    is($r->{variant}, '-', 'A: no variant when capped');
    not_shown(page($A), 'capped', 'A page 4');
    sleep 0.3;
    is(redis_cmd('HGET', meta_key($A), 'reminders'), 2,
       'A: a capped page writes nothing');

    # the period is over: move its start back
    seed($A, period_start => $now - $H - 5);
    shown(page($A), 'A after the period');
    field_becomes($A, 'reminders', 1, 'A: a new period, reminders 1');
    near(redis_cmd('HGET', meta_key($A), 'period_start'), NOW,
         'A: the new period starts now');

    shown(page($B), 'B: old period');
    field_becomes($B, 'reminders', 1, 'B: reminders start over');
    near(redis_cmd('HGET', meta_key($B), 'period_start'), NOW,
         'B: period_start now');
    shown(page($B), 'B page 2');
    not_shown(page($B), 'capped', 'B page 3');

    counters_are({ 'impressions:banner' => 5, 'suppressed:frequency' => 3,
                   'suppressed:timing' => 0 }, 'frequency');
});

#--------------------------------------------------------------------------
# retarget_incentive
#--------------------------------------------------------------------------

sub incentive_of {
    my ($b) = @_;
    return $b =~ m{<p class="rt-banner-inc"><b>([^<]*)</b><br>Use code <strong>([^<]*)</strong>}
        ? "$2|$1" : '';
}

rsection('retarget_incentive: never in the first reminder of a cart', q{
    retarget_frequency 10 1d;
    retarget_incentive 1h SAVE10 "10% off today";
}, sub {
    my $now = NOW;
    my ($A, $B) = map { rvid("inc-$_") } qw(A B);
    seed($A, cart_updated => $now - 2 * $H,
         'c:BAG' => cart_line(ms => ($now - 2 * $H) * 1000, name => 'Bag'));
    # B's cart is idle 40 minutes: the incentive does not apply yet
    seed($B, cart_updated => $now - 40 * 60,
         'c:BAG' => cart_line(ms => ($now - 40 * 60) * 1000, name => 'Bag'));

    is(incentive_of(shown(page($A), 'A page 1')), '',
       'A: no incentive in the first reminder');
    field_becomes($A, 'reminders', 1, 'A: first reminder written');
    is(incentive_of(shown(page($A), 'A page 2')), 'SAVE10|10% off today',
       'A: the incentive in the second');
    is(incentive_of(shown(page($A), 'A page 3')), 'SAVE10|10% off today',
       'A: and after');

    # the cart changed after the last reminder: a first reminder again
    # (once page 3's own write has landed, or it would undo the seed)
    field_becomes($A, 'reminders', 3, 'A: third reminder written');
    seed($A, last_reminder => $now - 3 * $H);
    is(incentive_of(shown(page($A), 'A, cart changed since')), '',
       'A: no incentive in the first reminder of the changed cart');
    is(incentive_of(shown(page($A), 'A, next')), 'SAVE10|10% off today',
       'A: then again');

    shown(page($B), 'B page 1 (idle 40m, past the 30m delay)');
    field_becomes($B, 'reminders', 1, 'B: first reminder written');
    is(incentive_of(shown(page($B), 'B page 2')), '',
       'B: idle less than "after": no incentive');
});

rsection('retarget_incentive: the longest "after" that applies, min_total', q{
    retarget_frequency 10 1d;
    retarget_incentive 1h ONE "one";
    retarget_incentive 3h THREE "three";
    retarget_incentive 2h TWO "two";
    retarget_incentive 5h FIVE "five" min_total=100;
}, sub {
    my $now = NOW;
    my %idle = (I90 => 90, I150 => 150, I240 => 240, I360 => 360,
                BIG => 360, EXACT => 360, ZERO => 20);
    my %price = (BIG => '60.00', EXACT => '50.00');
    my %v;
    for my $k (sort keys %idle) {
        $v{$k} = rvid("longest-$k");
        my $t = $now - $idle{$k} * 60;
        seed($v{$k}, cart_updated => $t, last_reminder => $t + 1,
             'c:BOX' => cart_line(ms => $t * 1000, qty => 2, name => 'Box',
                                  price => $price{$k} // '10.00'));
    }
    # last_reminder after cart_updated: not a first reminder any more
    my %want = (I90 => 'ONE|one', I150 => 'TWO|two', I240 => 'THREE|three',
                I360 => 'THREE|three', BIG => 'FIVE|five',
                EXACT => 'FIVE|five');
    for my $k (sort keys %want) {
        is(incentive_of(shown(page($v{$k}), $k)), $want{$k},
           "$k: idle $idle{$k}m, total "
           . 2 * ($price{$k} // 10) . ": $want{$k}");
    }
    not_shown(page($v{ZERO}), 'too_soon', 'ZERO: too soon, nothing');
});

rsection('retarget_incentive pool: one code per visitor', q{
    retarget_frequency 10 1d;
    retarget_incentive 1h pool:spring "Spring sale";
}, sub {
    my $now = NOW;
    my %v = map { $_ => rvid("pool-$_") } qw(A B D E);
    for (sort keys %v) {
        seed($v{$_}, cart_updated => $now - 2 * $H,
             'c:KITE' => cart_line(ms => ($now - 2 * $H) * 1000,
                                   name => 'Kite'));
    }
    seed($v{E}, cart_updated => $now - 40 * 60);     # "after" not reached
    seed($v{D}, 'code:spring' => 'PINNED-D');         # pinned before
    redis_cmd('RPUSH', 'rt:codes:spring', 'C1', 'C2');

    my $codes = sub { redis_cmd('LRANGE', 'rt:codes:spring', 0, -1) };

    is(incentive_of(shown(page($v{A}), 'A page 1')), '',
       'A: first reminder, no incentive');
    field_becomes($v{A}, 'code:spring', 'C1', 'A: C1 pinned to A');
    is_deeply($codes->(), ['C2'], 'A: popped from the pool');
    my $ttl = redis_cmd('TTL', meta_key($v{A}));
    ok($ttl > 0, 'A: the hash keeps a TTL') or diag("TTL $ttl");
    is(incentive_of(shown(page($v{A}), 'A page 2')), 'C1|Spring sale',
       'A: the pinned code shown');
    is(incentive_of(shown(page($v{A}), 'A page 3')), 'C1|Spring sale',
       'A: the same code again');
    sleep 0.3;
    is_deeply($codes->(), ['C2'], 'A: never a second code');

    shown(page($v{B}), 'B page 1');
    field_becomes($v{B}, 'code:spring', 'C2', 'B: C2 pinned to B');
    is(incentive_of(shown(page($v{B}), 'B page 2')), 'C2|Spring sale',
       'B: its own code');
    is(redis_cmd('EXISTS', 'rt:codes:spring'), 0, 'the pool is empty');

    # D: a code pinned already, nothing popped; first reminder: not shown
    redis_cmd('RPUSH', 'rt:codes:spring', 'C3');
    is(incentive_of(shown(page($v{D}), 'D page 1')), '',
       'D: first reminder, no incentive');
    is(incentive_of(shown(page($v{D}), 'D page 2')),
       'PINNED-D|Spring sale', 'D: the pinned code');
    sleep 0.3;
    is_deeply($codes->(), ['C3'], 'D: nothing popped');

    # E: the incentive does not apply yet: nothing popped
    shown(page($v{E}), 'E page 1');
    sleep 0.3;
    is_deeply($codes->(), ['C3'], 'E: nothing popped before "after"');
    ok(!defined redis_cmd('HGET', meta_key($v{E}), 'code:spring'),
       'E: no code');
});

# two pages of one visitor decided on the same state: each takes a code,
# one is pinned, the other goes back to the pool
rsection('retarget_incentive pool: two pages at once pin one code', q{
    retarget_frequency 10 1d;
    retarget_incentive 1h pool:race "Race";
}, sub {
    my $now = NOW;
    my $A = rvid('race-A');
    seed($A, cart_updated => $now - 2 * $H,
         'c:KITE' => cart_line(ms => ($now - 2 * $H) * 1000, name => 'Kite'));
    redis_cmd('RPUSH', 'rt:codes:race', 'R1', 'R2', 'R3');

    # both reads wait behind the pause, so both pages see no code
    my $req = "GET /page.html HTTP/1.1\r\nHost: localhost\r\n"
            . "Accept: text/html\r\nCookie: rt_vid="
            . signed_cookie($A, $SECRET) . "; rt_vid_consent=ack\r\n"
            . "Connection: close\r\n\r\n";
    redis_cmd('CLIENT', 'PAUSE', 300);
    my @s = map {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => server_port(), Proto => 'tcp', Timeout => 5)
            or die "connect: $!";
        syswrite($s, $req);
        $s;
    } 1 .. 2;
    my @bodies = map { local $/; my $s = $_; scalar <$s> } @s;
    close $_ for @s;
    is(scalar(grep { /rt-banner/ } @bodies), 2, 'both pages shown');

    field_becomes($A, 'code:race', 'R1', 'the first code pinned');
    eventually_is(sub { join ',', @{ redis_cmd('LRANGE', 'rt:codes:race',
                                               0, -1) || [] } },
                  'R3,R2', 'the second code went back to the pool');
    is(incentive_of(shown(page($A), 'the next page')), 'R1|Race',
       'the pinned code shown');
});

rsection('retarget_incentive pool: an empty pool offers nothing', q{
    retarget_frequency 10 1d;
    retarget_incentive 1h pool:empty "Nothing left";
}, sub {
    my $now = NOW;
    my ($A, $B) = map { rvid("empty-$_") } qw(A B);
    for ($A, $B) {
        seed($_, cart_updated => $now - 2 * $H,
             'c:KITE' => cart_line(ms => ($now - 2 * $H) * 1000,
                                   name => 'Kite'));
    }
    shown(page($A), 'A page 1');
    field_becomes($A, 'reminders', 1, 'A: first reminder written');
    is(incentive_of(shown(page($A), 'A page 2')), '', 'A page 2: nothing');
    is(incentive_of(shown(page($A), 'A page 3')), '', 'A page 3: nothing');
    sleep 0.3;
    ok(!defined redis_cmd('HGET', meta_key($A), 'code:empty'),
       'A: no code pinned');
    is(redis_cmd('EXISTS', 'rt:codes:empty'), 0, 'no pool key created');

    # the pool is filled: the next reminder pins, the one after shows
    redis_cmd('RPUSH', 'rt:codes:empty', 'LATE1');
    is(incentive_of(shown(page($B), 'B page 1')), '', 'B page 1');
    field_becomes($B, 'code:empty', 'LATE1', 'B: pinned once filled');
    is(incentive_of(shown(page($B), 'B page 2')), 'LATE1|Nothing left',
       'B page 2: shown');
});

#--------------------------------------------------------------------------
# retarget_variant
#--------------------------------------------------------------------------

my @IDS = map { rvid("split-$_") } 1 .. 200;

sub seed_carts {
    my ($ids) = @_;
    my $now = NOW;
    seed($_, cart_updated => $now - 2 * $H,
         'c:CUP' => cart_line(ms => ($now - 2 * $H) * 1000, name => 'Cup'))
        for @$ids;
}

rsection('retarget_variant: weighted, stable, sticky', q{
    retarget_frequency 100 1d;
    retarget_variant small 1 builtin;
    retarget_variant large 3 builtin;
}, sub {
    seed_carts(\@IDS);
    my (%first, %n);
    for my $v (@IDS) {
        my $r = page($v);
        $first{$v} = $r->{variant};
        $n{ $r->{decision} . ':' . $r->{variant} }++;
        my ($attr) = $r->{body} =~ /data-rt-variant="([^"]*)"/;
        $n{attr_mismatch}++ unless ($attr // '') eq $r->{variant};
    }
    my $small = $n{'shown:small'} // 0;
    my $large = $n{'shown:large'} // 0;
    is($small + $large, 200, 'every visitor shown one of the two')
        or diag(explain \%n);
    ok(!$n{attr_mismatch}, 'the banner carries the logged variant');
    # 1:3 over 200: about 50 (binomial sd ~6.1)
    ok($small >= 30 && $small <= 72, "small got $small of 200 (about 50)");

    # stable: a second page of every visitor gets the same variant
    my $moved = 0;
    for my $v (@IDS[0 .. 59]) {
        $moved++ if page($v)->{variant} ne $first{$v};
    }
    is($moved, 0, 'the same visitor always gets the same variant');

    # the stored variant is written and kept
    my ($L) = grep { $first{$_} eq 'large' } @IDS;
    my ($S) = grep { $first{$_} eq 'small' } @IDS;
    field_becomes($L, 'variant', 'large', 'large visitor: variant stored');
    seed($L, variant => 'small');
    is(page($L)->{variant}, 'small', 'a stored variant wins over the draw');
    field_becomes($L, 'variant', 'small', 'and stays stored');
    # a stored variant this location does not have: the draw
    seed($S, variant => 'retired');
    is(page($S)->{variant}, 'small', 'an unknown stored variant: the draw');
    field_becomes($S, 'variant', 'small', 'the draw is stored');

    settle();
    my $s = stats();
    is(($s->{'impressions:small'} // 0) + ($s->{'impressions:large'} // 0),
       262, 'impressions:small + impressions:large');
    is($s->{'impressions:small'} // 0,
       $small + scalar(grep { $first{$_} eq 'small' } @IDS[0 .. 59]) + 2,
       'impressions:small counted per variant');
});

#--------------------------------------------------------------------------
# retarget_holdout
#--------------------------------------------------------------------------

rsection('retarget_holdout 100: never shown, counted eligible', q{
    retarget_holdout 100;
    retarget_frequency 2 1d;
}, sub {
    my $now = NOW;
    my ($A, $B) = map { rvid("hold-$_") } qw(A B);
    seed($A, cart_updated => $now - 2 * $H,
         'c:FAN' => cart_line(ms => ($now - 2 * $H) * 1000, name => 'Fan'));
    seed($B, cart_updated => $now - 60,
         'c:FAN' => cart_line(ms => ($now - 60) * 1000, name => 'Fan'));

    my $r = page($A);
    not_shown($r, 'holdout', 'A');
    is($r->{variant}, 'holdout', 'A: $retarget_variant holdout');
    is($r->{count}, 1, 'A: the cart still counted in the variable');
    field_becomes($A, 'reminders', 1, 'A: the eligible page counts');
    my $m = meta($A);
    like($m->{seen} // '', qr/^\d+ holdout$/, 'A: seen "TS holdout"');
    near($m->{last_reminder}, $now, 'A: last_reminder');
    ok(!defined $m->{variant}, 'A: no variant stored for the holdout');

    not_shown(page($A), 'holdout', 'A page 2');
    not_shown(page($A), 'capped', 'A page 3: the holdout is capped too');
    not_shown(page($B), 'too_soon', 'B: not eligible, not counted');

    counters_are({ 'eligible:holdout' => 2, 'impressions:banner' => 0,
                   'suppressed:frequency' => 1, 'suppressed:timing' => 1 },
                 'holdout 100');
});

rsection('retarget_holdout 0: never a holdout', q{
    retarget_holdout 0;
    retarget_frequency 100 1d;
}, sub {
    seed_carts(\@IDS);
    my %n;
    $n{ page($_)->{decision} }++ for @IDS;
    is_deeply(\%n, { shown => 200 }, 'all 200 shown') or diag(explain \%n);
    counters_are({ 'eligible:holdout' => 0, 'impressions:banner' => 200 },
                 'holdout 0');
});

rsection('retarget_holdout 30: about 30%, stable', q{
    retarget_holdout 30;
    retarget_frequency 100 1d;
}, sub {
    seed_carts(\@IDS);
    my (%first, %n);
    for my $v (@IDS) {
        my $r = page($v);
        $first{$v} = $r->{decision};
        $n{ $r->{decision} }++;
        if ($r->{decision} eq 'holdout' && $r->{body} =~ /rt-banner/) {
            $n{holdout_with_banner}++;
        }
    }
    my $h = $n{holdout} // 0;
    is(($n{shown} // 0) + $h, 200, 'shown or holdout') or diag(explain \%n);
    ok(!$n{holdout_with_banner}, 'no banner for the holdout');
    # 30% of 200: about 60 (sd ~6.5)
    ok($h >= 35 && $h <= 85, "holdout got $h of 200 (about 60)");
    my $moved = 0;
    for my $v (@IDS[0 .. 59]) {
        $moved++ if page($v)->{decision} ne $first{$v};
    }
    is($moved, 0, 'a visitor stays in (or out of) the holdout');
    my $h60 = grep { $first{$_} eq 'holdout' } @IDS[0 .. 59];
    counters_are({ 'eligible:holdout' => $h + $h60,
                   'impressions:banner' => 260 - $h - $h60 }, 'holdout 30');
});

#--------------------------------------------------------------------------
# $retarget_cart_count, $retarget_cart_total
#--------------------------------------------------------------------------

rsection('$retarget_cart_count and $retarget_cart_total', '', sub {
    my $now = NOW;
    my $ms = ($now - 2 * $H) * 1000;
    my ($A, $B, $N) = map { rvid("vars-$_") } qw(A B N);
    seed($A, cart_updated => $now - 2 * $H,
         'c:A' => cart_line(ms => $ms, qty => 3, price => '1.99'),
         'c:B' => cart_line(ms => $ms, qty => 1, price => '10'),
         'c:C' => cart_line(ms => $ms, qty => 2, price => '0.5'),
         'c:D' => cart_line(ms => $ms, qty => 4, price => 'free'),
         'c:E' => cart_line(ms => $ms, qty => 1, price => ''));
    seed($B, cart_updated => $now - 60,
         'c:A' => cart_line(ms => ($now - 60) * 1000, qty => 1000,
                            price => '999999.99'));

    my $r = page($A);
    my $b = shown($r, 'A');
    is($r->{count}, 11, 'A: quantities summed');
    is($r->{total}, '16.97', 'A: 3 x 1.99 + 10 + 2 x 0.50; bad prices as 0');
    like($b, qr{Items left in your cart: 11}, 'A: {{cart_count}}');
    like($b, qr{Total <b>16\.97</b>}, 'A: {{cart_total}}');

    $r = page($B);
    not_shown($r, 'too_soon', 'B');
    is($r->{count}, 1000, 'B: count on a page without a reminder');
    is($r->{total}, '999999990.00', 'B: a large total');

    # a page that made no read: the variables are not set
    $r = page(undef, consent => 'ack');
    is($r->{count}, '-', 'new visitor: no $retarget_cart_count');
    is($r->{total}, '-', 'new visitor: no $retarget_cart_total');
});

done_testing();
