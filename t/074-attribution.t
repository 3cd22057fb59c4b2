# Attribution of purchases to the reminders that led to them: a purchase
# of a returning visitor reads the meta's "clicked" and "seen" ("TS
# VARIANT") with its order check, and counts
#   conversions:V, revenue:V            a click on V within the click window
#   view_conversions:V, view_revenue:V  else a reminder V seen within the
#                                       view window
#   conversions:holdout, revenue:holdout  else a holdout visitor's eligible
#                                       page ("seen" TS holdout) within it
# once per order, with the revenue in cents, flushed as "12.34".
#
# The clock is the stored timestamps: each step seeds the visitors' meta
# with times relative to now (now - 1h, now - 8d, ...) before the purchase.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis;

use_redis();

my $SECRET = '0123456789abcdef0123456789abcdef';

my $HTTP = qq{
    retarget_secret $SECRET;
    retarget_redis 127.0.0.1:\$TEST_NGINX_REDIS_PORT;
};

# /buy has the windows of the test; /buy-short much shorter ones, to show
# that the purchase's location decides
my $SERVER = q{
    retarget on;
    retarget_variant A 1 builtin;
    retarget_variant B 1 builtin;
    retarget_holdout 10;

    location / { }
    location = /buy {
        retarget_attribution click=7d view=1d;
        retarget_event purchase order=$arg_order value=$arg_value;
        return 200 "ok\n";
    }
    location = /buy-short {
        retarget_attribution click=1h view=10m;
        retarget_event purchase order=$arg_order value=$arg_value;
        return 200 "ok\n";
    }
};

my $H = 3600;
my $D = 86400;

#--------------------------------------------------------------------------
# helpers
#--------------------------------------------------------------------------

sub stats { hash('rt:stats:' . today()) }

sub buy {
    my ($vid, $query, $loc) = @_;
    my @h = ('Accept: text/html');
    push @h, 'Cookie: rt_vid=' . signed_cookie($vid, $SECRET) if $vid;
    my $r = http_req(uri => ($loc // '/buy') . "?$query", headers => \@h);
    is($r->{status}, 200, "purchase $query: 200")
        or diag($r->{error} // $r->{raw});
}

# "TS VARIANT" stamps relative to now: seed(vid, clicked => [-3600, 'A'])
sub seed {
    my ($vid, %f) = @_;
    my @kv;
    for my $k (sort keys %f) {
        my $v = $f{$k};
        push @kv, $k, ref $v ? (time + $v->[0]) . " $v->[1]" : $v;
    }
    redis_cmd('DEL', "rt:{$vid}:meta");
    is(redis_cmd('HSET', "rt:{$vid}:meta", 'first_seen', time - 30 * $D, @kv),
       1 + @kv / 2, "$vid: meta seeded");
}

# the attribution counters of today, and nothing else that names a variant
sub attributed {
    my $s = stats();
    return { map { $_ => $s->{$_} }
             grep { /^(?:view_)?(?:conversions|revenue):/ } keys %$s };
}

sub section {
    my ($name, $code) = @_;
    Test::Retarget::Redis::section($name,
        { http_config => $HTTP, config => $SERVER },
        { 'index.html' => "<html><body><h1>Shop</h1></body></html>\n" },
        $code);
}

my $X = vid('buyer_x');
my $Y = vid('buyer_y');

#--------------------------------------------------------------------------
# click window
#--------------------------------------------------------------------------

section('a click within the click window: conversions and revenue of V', sub {
    seed($X, clicked => [-1 * $H, 'A'], seen => [-2 * $H, 'A']);
    seed($Y, clicked => [-6 * $D, 'B'], seen => [-6 * $D, 'B']);
    buy($X, 'order=C-1&value=12.34');
    buy($Y, 'order=C-2&value=5');
    settle();
    is_deeply(attributed(),
              { 'conversions:A' => 1, 'revenue:A' => '12.34',
                'conversions:B' => 1, 'revenue:B' => '5' },
              'X to A (click 1h ago), Y to B (click 6 days ago)');
    my $s = stats();
    is($s->{purchases}, 2, 'purchases 2');
    is($s->{revenue}, '17.34', 'revenue 17.34 in all');

    # later, X buys again, still within the window of the same click
    buy($X, 'order=C-3&value=0.66');
    # and Y, whose click is now too old (as if a day later)
    seed($Y, clicked => [-8 * $D, 'B'], seen => [-8 * $D, 'B']);
    buy($Y, 'order=C-4&value=100');
    settle();
    is_deeply(attributed(),
              { 'conversions:A' => 2, 'revenue:A' => '13',
                'conversions:B' => 1, 'revenue:B' => '5' },
              'A: two conversions, 12.34 + 0.66; B: the old click counts '
              . 'no more');
    is(stats()->{purchases}, 4, 'every purchase is still a purchase');
});

section('the window edge, and a purchase without an order id', sub {
    seed($X, clicked => [-7 * $D + 120, 'A']);
    seed($Y, clicked => [-7 * $D - 120, 'B']);
    buy($X, 'value=1.50');
    buy($Y, 'value=2.50');
    settle();
    is_deeply(attributed(), { 'conversions:A' => 1, 'revenue:A' => '1.5' },
              'A: 2 minutes inside 7 days; B: 2 minutes outside');
    is(stats()->{purchases}, 2, 'purchases 2');
});

#--------------------------------------------------------------------------
# view window
#--------------------------------------------------------------------------

section('no click in the window, a reminder seen in the view window', sub {
    seed($X, clicked => [-8 * $D, 'A'], seen => [-1 * $H, 'B']);
    seed($Y, seen => [-20 * $H, 'A']);
    buy($X, 'order=V-1&value=12.34');
    buy($Y, 'order=V-2&value=0.50');
    settle();
    is_deeply(attributed(),
              { 'view_conversions:B' => 1, 'view_revenue:B' => '12.34',
                'view_conversions:A' => 1, 'view_revenue:A' => '0.5' },
              'X: the old click on A does not count, the view of B does; '
              . 'Y: seen 20h ago');

    # the next day: both views are too old
    seed($X, clicked => [-8 * $D, 'A'], seen => [-25 * $H, 'B']);
    seed($Y, seen => [-2 * $D, 'A']);
    buy($X, 'order=V-3&value=1');
    buy($Y, 'order=V-4&value=1');
    settle();
    is_deeply(attributed(),
              { 'view_conversions:B' => 1, 'view_revenue:B' => '12.34',
                'view_conversions:A' => 1, 'view_revenue:A' => '0.5' },
              'nothing more: click and view too old');
    is(stats()->{purchases}, 4, 'purchases 4');
});

section('click and view both too old, or neither stored: nothing', sub {
    seed($X, clicked => [-30 * $D, 'A'], seen => [-3 * $D, 'A']);
    seed($Y, last_seen => time);
    buy($X, 'order=N-1&value=3');
    buy($Y, 'order=N-2&value=3');
    # a visitor without any stored state, and a brand-new one
    buy(vid('never_seen'), 'order=N-3&value=3');
    buy(undef, 'order=N-4&value=3');
    settle();
    is_deeply(attributed(), {}, 'no attribution counter');
    is(stats()->{purchases}, 4, 'purchases 4');
    is(stats()->{revenue}, '12', 'revenue 12');
});

#--------------------------------------------------------------------------
# holdout
#--------------------------------------------------------------------------

section('holdout: a purchase in the view window of an eligible page', sub {
    seed($X, seen => [-3 * $H, 'holdout']);
    seed($Y, seen => [-30 * $H, 'holdout']);
    buy($X, 'order=H-1&value=40');
    buy($Y, 'order=H-2&value=40');
    settle();
    is_deeply(attributed(),
              { 'conversions:holdout' => 1, 'revenue:holdout' => '40' },
              'X counts for the holdout, Y (30h ago) not');

    # a "click" on the holdout is no click: no reminder was shown
    seed($X, clicked => [-1 * $H, 'holdout'], seen => [-2 * $D, 'holdout']);
    seed($Y, clicked => [-1 * $H, 'holdout'], seen => [-1 * $H, 'A']);
    buy($X, 'order=H-3&value=1');
    buy($Y, 'order=H-4&value=2');
    settle();
    is_deeply(attributed(),
              { 'conversions:holdout' => 1, 'revenue:holdout' => '40',
                'view_conversions:A' => 1, 'view_revenue:A' => '2' },
              'a holdout click is ignored: X nothing, Y the view of A');
});

#--------------------------------------------------------------------------
# what the meta may hold
#--------------------------------------------------------------------------

section('unknown variants and garbage stamps: nothing, and no crash', sub {
    my @cases = (
        [ clicked => [-1 * $H, 'Z'], seen => [-1 * $H, 'Q'] ],
        [ clicked => [-1 * $H, 'a'], seen => [-1 * $H, 'AA'] ],
        [ clicked => 'garbage', seen => 'also garbage' ],
        [ clicked => '', seen => ' A' ],
        [ clicked => (time - $H), seen => (time - $H) . ' ' ],
        [ clicked => '-5 A', seen => '99999999999999999999999 A' ],
        [ clicked => 'A ' . (time - $H), seen => "\xff\xfe B" ],
    );
    my $i = 0;
    for my $c (@cases) {
        my $v = vid("odd$i");
        seed($v, @$c);
        buy($v, "order=U-$i&value=1");
        $i++;
    }
    # a meta that is no hash at all
    redis_cmd('SET', "rt:{$X}:meta", 'a string');
    buy($X, 'order=U-X&value=1');
    settle();
    is_deeply(attributed(), {}, 'no attribution counter');
    is(stats()->{purchases}, $i + 1, 'every purchase counted');
    my $r = http_req(uri => '/index.html');
    is($r->{status}, 200, 'nginx still answers');
});

section('a location with shorter windows: its own windows apply', sub {
    seed($X, clicked => [-2 * $H, 'A'], seen => [-5 * 60, 'B']);
    seed($Y, clicked => [-2 * $H, 'A'], seen => [-20 * 60, 'B']);
    buy($X, 'order=S-1&value=1', '/buy-short');
    buy($Y, 'order=S-2&value=1', '/buy-short');
    settle();
    is_deeply(attributed(),
              { 'view_conversions:B' => 1, 'view_revenue:B' => '1' },
              'click=1h view=10m: X by its view 5 min ago, Y not at all');
});

#--------------------------------------------------------------------------
# once per order
#--------------------------------------------------------------------------

section('a duplicate order id is attributed once', sub {
    seed($X, clicked => [-1 * $H, 'A']);
    seed($Y, seen => [-1 * $H, 'B']);
    buy($X, 'order=D-1&value=12.34');
    buy($Y, 'order=D-2&value=7.01');
    # the thank-you pages loaded again
    buy($X, 'order=D-1&value=12.34');
    buy($Y, 'order=D-2&value=7.01');
    settle();
    buy($X, 'order=D-1&value=12.34');
    settle();
    is_deeply(attributed(),
              { 'conversions:A' => 1, 'revenue:A' => '12.34',
                'view_conversions:B' => 1, 'view_revenue:B' => '7.01' },
              'each order attributed once');
    my $s = stats();
    is($s->{purchases}, 2, 'purchases 2');
    is($s->{purchases_duplicate}, 3, 'purchases_duplicate 3');
    is($s->{revenue}, '19.35', 'revenue 19.35');
});

section('revenue counters are flushed as amounts ("12.34")', sub {
    seed($X, clicked => [-1 * $H, 'A']);
    buy($X, "order=R-$_&value=0.01") for 1 .. 3;
    settle();
    is(stats()->{'revenue:A'}, '0.03', 'revenue:A 0.03 (3 x 1 cent)');
    buy($X, 'order=R-4&value=12.31');
    settle();
    is(stats()->{'revenue:A'}, '12.34', 'revenue:A "12.34"');
    is(stats()->{'conversions:A'}, 4, 'conversions:A is a count');
});

done_testing();
