# Counting people, not pages (issue 12): per arm (each variant and the
# holdout) and per UTC day, HyperLogLogs of distinct visitors
#
#   rt:people:DAY:eligible:ARM          a page decided "shown" (variant) or
#                                       "holdout": one PFADD per visit (the
#                                       visit's first reminding page, or
#                                       the first of a new UTC day)
#   rt:people:DAY:clickers:V            a counted click
#   rt:people:DAY:converters:ARM        a purchase within max(click, view
#                                       window) of the reminder seen
#                                       (intent to treat, every arm alike)
#   rt:people:DAY:click_converters:V    today's attribution, by a click
#   rt:people:DAY:view_converters:ARM   today's attribution, by a view (the
#                                       holdout's too)
#
# each kept 100 days, and the daily hash's buyers:ARM, buyer_revenue:ARM
# and squares:ARM (the converters' purchases, their amounts, the sum of
# their amounts squared); a duplicate order counts nothing.  Then the
# per-arm numbers on retarget_status (Prometheus retarget_arm_*{arm=...},
# JSON "arms"), and a Redis whose replies to them are hostile.
#
# The clock is the stored timestamps (as in t/074): the visitors' meta is
# seeded relative to now.  PFADDs are counted with INFO commandstats.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis;
use Test::Retarget::Campaign;
use Test::Retarget::FakeRedis;
use JSON::PP ();
use Time::HiRes qw(sleep);

use_redis();

my $H = 3600;
my $D = 86400;
my $TTL = 100 * $D;

my $PAGE = "<html><body><p>content</p></body></html>\n";

my $SERVER = q{
    retarget on;
    retarget_variant A 1 builtin;
    retarget_variant B 1 builtin;
    retarget_holdout 30;
    # every page of a visit may remind: the HLL must count the visitor once
    retarget_frequency 1000 1d pages=1000;
    retarget_attribution click=7d view=1d;

    location / { }
    location /retarget/ { retarget_control; }
    location = /buy {
        retarget_event purchase order=$arg_order value=$arg_value;
        return 200 "ok\n";
    }
    location = /retarget_status { retarget_status; }
};

sub psection {
    my ($name, $code) = @_;
    section($name, { http_config => campaign_http(), config => $SERVER },
            { 'page.html' => $PAGE }, $code);
}

#--------------------------------------------------------------------------
# helpers
#--------------------------------------------------------------------------

sub people_key { my ($kind, $arm) = @_; "rt:people:" . today() . ":$kind:$arm" }

sub pfcount { redis_cmd('PFCOUNT', people_key(@_)) }

# a visitor with a cart a reminder can be shown for
sub seed_cart {
    my ($vid) = @_;
    my $now = NOW;
    seed($vid, cart_updated => $now - 2 * $H,
         'c:MUG' => cart_line(ms => ($now - 2 * $H) * 1000, price => '4.00',
                              name => 'Mug', url => '/p/mug'));
}

# the arm a page decided: the variant shown, or the holdout
sub arm_of {
    my ($r) = @_;
    return 'holdout' if $r->{decision} eq 'holdout';
    return $r->{variant} if $r->{decision} eq 'shown';
    return "none ($r->{decision})";
}

sub cookies {
    my ($vid) = @_;
    return 'Cookie: rt_vid=' . signed_cookie($vid, $SECRET)
         . '; rt_vid_consent=' . signed_consent('ack', $SECRET);
}

sub click {
    my ($vid, $v) = @_;
    my @h = ('Sec-Fetch-Site: same-origin');
    push @h, cookies($vid) if defined $vid;
    my $r = http_req(uri => "/retarget/click?v=$v&to=/page.html",
                     headers => \@h);
    is($r->{status}, 302, "click v=$v: 302");
}

sub buy {
    my ($vid, $query) = @_;
    my @h = ('Accept: text/html');
    push @h, cookies($vid) if defined $vid;
    my $r = http_req(uri => "/buy?$query", headers => \@h);
    is($r->{status}, 200, "purchase $query: 200")
        or diag($r->{error} // $r->{raw});
}

# meta stamps relative to now: stamp(vid, seen => [-3600, 'A'], ...)
sub stamp {
    my ($vid, %f) = @_;
    redis_cmd('DEL', meta_key($vid));
    seed($vid, first_seen => NOW - 30 * $D,
         map { $_ => (NOW + $f{$_}[0]) . " $f{$_}[1]" } sort keys %f);
}

# "name{arm=\"X\"}" => value of the retarget_arm_* lines
sub prometheus {
    my $r = http_req(uri => '/retarget_status?format=prometheus');
    is($r->{status}, 200, 'prometheus: 200');
    my %m;
    for (split /\n/, $r->{body} // '') {
        $m{"$1:$2"} = $3 if /^retarget_arm_(\w+)\{arm="([^"]*)"\} (\S+)$/;
    }
    return (\%m, $r->{body} // '');
}

sub status_json {
    my $r = http_req(uri => '/retarget_status');
    is($r->{status}, 200, 'json: 200');
    return eval { JSON::PP::decode_json($r->{body}) } // {};
}

sub ttl_ok {
    my ($key) = @_;
    my $t = redis_cmd('TTL', $key);
    ok($t > $TTL - 120 && $t <= $TTL, "$key: TTL $t, about 100 days");
}

sub near {
    my ($got, $want, $name) = @_;
    ok(defined $got && abs($got - $want) < 0.005, $name)
        or diag('got ' . ($got // 'undef') . ", want $want");
}

#--------------------------------------------------------------------------
# eligible visitors
#--------------------------------------------------------------------------

psection('eligible: distinct visitors per arm, one PFADD per visit', sub {
    my (%arm, %pages, %visitors);
    my @v = map { rvid("eligible$_") } 1 .. 30;
    seed_cart($_) for @v;

    my $pfadd0 = cmd_calls('pfadd');
    my $i = 0;
    for my $vid (@v) {
        # 1 to 4 pages in one visit
        for my $n (1 .. 1 + $i % 4) {
            my $r = page($vid);
            my $a = arm_of($r);
            $arm{$vid} //= $a;
            is($a, $arm{$vid}, "visitor $i page $n: the same arm ($a)");
            $pages{$a}++;
        }
        $i++;
    }
    $visitors{ $arm{$_} }++ for @v;
    is_deeply([sort keys %visitors], [qw(A B holdout)],
              'the 30 visitors fall into A, B and the holdout')
        or diag(explain \%visitors);

    eventually(sub { cmd_calls('pfadd') - $pfadd0 >= 30 });
    sleep 0.2;
    is(cmd_calls('pfadd') - $pfadd0, 30,
       'one PFADD per visitor: the later pages of a visit add nothing');

    for my $a (qw(A B holdout)) {
        is(pfcount('eligible', $a), $visitors{$a},
           "eligible:$a: $visitors{$a} distinct visitors "
           . "($pages{$a} pages)");
        ttl_ok(people_key('eligible', $a));
    }
    is(redis_cmd('EXISTS', people_key('eligible', 'banner')), 0,
       'no key for the built-in variant nobody saw');

    settle();
    my $s = stats();
    is($s->{'impressions:A'}, $pages{A}, "impressions:A: $pages{A} pages");
    is($s->{'eligible:holdout'}, $pages{holdout},
       "eligible:holdout: $pages{holdout} pages");

    # a new visit of three of them (the last one ended 2 hours ago): one
    # PFADD each, the same people
    my @again = @v[0 .. 2];
    seed($_, visit_last => NOW - 2 * $H) for @again;
    my $pfadd1 = cmd_calls('pfadd');
    page($_) for @again;
    eventually(sub { cmd_calls('pfadd') - $pfadd1 >= 3 });
    sleep 0.2;
    is(cmd_calls('pfadd') - $pfadd1, 3, 'a new visit: one PFADD each');

    # a visit going on over midnight: its last impression was yesterday
    my ($late) = grep { $arm{$_} ne 'holdout' } @v[3 .. 29];
    my ($same) = grep { $arm{$_} ne 'holdout' && $_ ne $late } @v[3 .. 29];
    seed($late, visit_last => NOW - 60, visit_pages => 2,
         seen => (NOW - $D) . " $arm{$late}");
    seed($same, visit_last => NOW - 60, visit_pages => 2,
         seen => (NOW - 60) . " $arm{$same}");
    my $pfadd2 = cmd_calls('pfadd');
    is(page($late)->{decision}, 'shown', 'the visit over midnight: shown');
    is(page($same)->{decision}, 'shown', 'a visit of today: shown');
    eventually(sub { cmd_calls('pfadd') - $pfadd2 >= 1 });
    sleep 0.3;
    is(cmd_calls('pfadd') - $pfadd2, 1,
       'the first page of a new day adds, a later page of today not');

    for my $a (qw(A B holdout)) {
        is(pfcount('eligible', $a), $visitors{$a},
           "eligible:$a: still $visitors{$a}");
    }

    # the same numbers per arm on the status
    settle();
    my %want_pages = %pages;
    $want_pages{ $arm{$_} }++ for @again, $late, $same;
    my ($m, $body) = prometheus();
    for my $a (qw(A B holdout)) {
        is($m->{"eligible_visitors:$a"}, $visitors{$a},
           "prometheus: eligible_visitors{arm=\"$a\"} $visitors{$a}");
        is($m->{"converters:$a"}, 0, "prometheus: converters of $a 0");
    }
    for my $a (qw(A B)) {
        is($m->{"impressions:$a"}, $want_pages{$a},
           "prometheus: impressions{arm=\"$a\"} $want_pages{$a}");
        is($m->{"clickers:$a"}, 0, "prometheus: clickers of $a 0");
    }
    is($m->{'eligible_pages:holdout'}, $want_pages{holdout},
       "prometheus: eligible_pages{arm=\"holdout\"} $want_pages{holdout}");
    ok(!exists $m->{'impressions:holdout'} && !exists $m->{'clickers:holdout'}
       && !exists $m->{'eligible_pages:A'},
       'prometheus: no impressions or clickers for the holdout, no '
       . 'eligible pages for a variant');
    like($body, qr/^# HELP retarget_arm_eligible_visitors [^\n]*0\.81 %[^\n]*\n# TYPE retarget_arm_eligible_visitors gauge\nretarget_arm_eligible_visitors\{arm="A"\} $visitors{A}\nretarget_arm_eligible_visitors\{arm="B"\} $visitors{B}\nretarget_arm_eligible_visitors\{arm="holdout"\} $visitors{holdout}\n/m,
         'prometheus: HELP, TYPE gauge, the variants in order, the holdout '
         . 'last');
    my @bad = grep { !/^(# (HELP|TYPE) \w+ .+|\w+(\{(\w+="([^"\\]|\\.)*",?)+\})? -?[\d.]+)$/ }
              split /\n/, $body;
    is_deeply(\@bad, [], 'prometheus: well-formed lines');

    my $j = status_json();
    is($j->{arms}{$_}{eligible_visitors}, $visitors{$_},
       "json: arms.$_.eligible_visitors") for qw(A B holdout);
    is($j->{arms}{A}{impressions}, $want_pages{A}, 'json: arms.A.impressions');
    is($j->{arms}{holdout}{eligible_pages}, $want_pages{holdout},
       'json: arms.holdout.eligible_pages');
});

#--------------------------------------------------------------------------
# clickers
#--------------------------------------------------------------------------

psection('clickers: distinct visitors who clicked, per variant', sub {
    my @c = map { rvid("clicker$_") } 1 .. 5;
    click($c[0], 'A');
    click($c[0], 'A');
    click($c[1], 'A');
    click($c[2], 'B');
    click($c[3], 'holdout');     # no reminder to click: not counted
    click($c[4], 'Z');           # no such variant
    click(undef, 'A');           # a new visitor: a click, nobody to count
    settle();
    is(stats()->{'clicks:A'}, 4, 'clicks:A 4 (the new visitor\'s too)');
    is(stats()->{'clicks:B'}, 1, 'clicks:B 1');
    is(pfcount('clickers', 'A'), 2, 'clickers:A: 2 people');
    is(pfcount('clickers', 'B'), 1, 'clickers:B: 1');
    is(redis_cmd('EXISTS', people_key('clickers', 'holdout')), 0,
       'no clickers of the holdout');
    is(redis_cmd('EXISTS', people_key('clickers', 'Z')), 0,
       'no clickers of a made-up variant');
    ttl_ok(people_key('clickers', 'A'));

    my $pfcount0 = cmd_calls('pfcount');
    my ($m) = prometheus();
    is(cmd_calls('pfcount') - $pfcount0, 8,
       'the status: 8 PFCOUNTs (3 per variant, 2 for the holdout), in its '
       . 'one wait');
    is($m->{'clickers:A'}, 2, 'prometheus: clickers{arm="A"} 2');
    is($m->{'clicks:A'}, 4, 'prometheus: clicks{arm="A"} 4');
    is($m->{'clickers:B'}, 1, 'prometheus: clickers{arm="B"} 1');
});

#--------------------------------------------------------------------------
# converters, buyers, revenue, squares
#--------------------------------------------------------------------------

psection('converters: intent to treat, and the attribution apart', sub {
    my %k = map { $_ => rvid("buyer$_") } 1 .. 8;

    stamp($k{1}, clicked => [-1 * $H, 'A'], seen => [-2 * $H, 'A']);
    stamp($k{2}, seen => [-3 * $H, 'B']);
    stamp($k{3}, seen => [-3 * $D, 'B']);        # outside view=1d, in 7d
    stamp($k{4}, seen => [-2 * $H, 'holdout']);
    stamp($k{5}, seen => [-3 * $D, 'holdout']);  # the holdout's 7d too
    stamp($k{6}, seen => [-8 * $D, 'A']);        # too old for anything
    stamp($k{7}, clicked => [-2 * $D, 'A'], seen => [-2 * $D, 'B']);
    stamp($k{8}, seen => [-1 * $H, 'A']);

    my $pfadd0 = cmd_calls('pfadd');
    buy($k{1}, 'order=K1&value=12.34');
    buy($k{2}, 'order=K2&value=5');
    buy($k{3}, 'order=K3&value=2.50');
    buy($k{4}, 'order=K4&value=40');
    buy($k{5}, 'order=K5&value=1.50');
    buy($k{6}, 'order=K6&value=9');
    buy($k{7}, 'order=K7&value=3');
    buy($k{8}, 'order=K8&value=20000000');    # squared as 10^7 at most
    # the thank-you pages again: nothing more
    buy($k{1}, 'order=K1&value=12.34');
    buy($k{2}, 'order=K2&value=5');
    # k1 again, another order: a buyer again, the same converter
    buy($k{1}, 'order=K9&value=0.66');
    # a brand-new visitor: no stamp, nothing
    buy(undef, 'order=N1&value=7');
    settle();

    my %conv = (A => 2, B => 3, holdout => 2);
    is(pfcount('converters', $_), $conv{$_}, "converters:$_: $conv{$_}")
        for sort keys %conv;
    is(pfcount('click_converters', 'A'), 2,
       'click_converters:A: k1 (1h) and k7 (2 days, its seen is B)');
    is(redis_cmd('EXISTS', people_key('click_converters', 'B')), 0,
       'click_converters:B: none');
    is(pfcount('view_converters', 'A'), 1, 'view_converters:A: k8');
    is(pfcount('view_converters', 'B'), 1, 'view_converters:B: k2');
    is(pfcount('view_converters', 'holdout'), 1,
       'view_converters:holdout: k4 (k5 is too old for the view window)');
    ttl_ok(people_key('converters', 'B'));
    ttl_ok(people_key('view_converters', 'holdout'));
    # 8 converting purchases and 6 attributed ones, one PFADD each
    is(cmd_calls('pfadd') - $pfadd0, 14,
       '14 PFADDs: none for the duplicates, k6 or the new visitor');

    my $s = stats();
    is($s->{'buyers:A'}, 3, 'buyers:A 3 (k1 twice, k8)');
    is($s->{'buyers:B'}, 3, 'buyers:B 3 (k2, k3, k7)');
    is($s->{'buyers:holdout'}, 2, 'buyers:holdout 2 (k4, k5)');
    near($s->{'buyer_revenue:A'}, 20000013, 'buyer_revenue:A 20000013');
    near($s->{'buyer_revenue:B'}, 10.5, 'buyer_revenue:B 10.5');
    near($s->{'buyer_revenue:holdout'}, 41.5, 'buyer_revenue:holdout 41.5');
    # round(12.34^2) = 152, round(0.66^2) = 0, 10^7 squared
    is($s->{'squares:A'}, '100000000000152', 'squares:A 10^14 + 152 + 0');
    # 25 + round(6.25) + 9
    is($s->{'squares:B'}, 40, 'squares:B 25 + 6 + 9');
    # 1600 + round(2.25)
    is($s->{'squares:holdout'}, 1602, 'squares:holdout 1600 + 2');
    is($s->{purchases}, 10, 'purchases 10');
    is($s->{purchases_duplicate}, 2, 'purchases_duplicate 2');
    # today's attribution, as before
    is($s->{'conversions:A'}, 3, 'conversions:A: k1 twice, k7');
    is($s->{'view_conversions:B'}, 1, 'view_conversions:B: k2');
    is($s->{'conversions:holdout'}, 1, 'conversions:holdout: k4');

    my ($m) = prometheus();
    is($m->{"converters:$_"}, $conv{$_}, "prometheus: converters of $_")
        for sort keys %conv;
    is($m->{'buyers:B'}, 3, 'prometheus: buyers{arm="B"} 3');
    is($m->{'buyer_revenue:holdout'}, '41.5',
       'prometheus: buyer_revenue{arm="holdout"} 41.5');
    is($m->{'conversions:A'}, 3, 'prometheus: conversions{arm="A"} 3');
    is($m->{'revenue:holdout'}, 40, 'prometheus: revenue{arm="holdout"} 40');
    ok(!grep({ /^squares/ } keys %$m), 'prometheus: no squares');

    my $j = status_json();
    is($j->{arms}{B}{converters}, 3, 'json: arms.B.converters');
    is($j->{arms}{holdout}{buyer_revenue}, '41.5',
       'json: arms.holdout.buyer_revenue, a string as in "today"');
});

#--------------------------------------------------------------------------
# what Redis answers the status
#--------------------------------------------------------------------------

psection('status: keys of other types, odd counters', sub {
    redis_cmd('SET', people_key('eligible', 'A'), 'not a hyperloglog');
    redis_cmd('HSET', people_key('converters', 'B'), 'f', 'v');
    redis_cmd('PFADD', people_key('eligible', 'B'), 'x', 'y');
    redis_cmd('HSET', 'rt:stats:' . today(), 'impressions:A', '9' x 23,
              'clicks:A', 'abc', 'conversions:A', '-3', 'revenue:A', '1e5');
    my ($m, $body) = prometheus();
    ok(!exists $m->{'eligible_visitors:A'},
       'a string where the HLL should be: left out');
    ok(!exists $m->{'converters:B'}, 'a hash where the HLL should be: left out');
    is($m->{'eligible_visitors:B'}, 2, 'the other counts are there');
    is($m->{'impressions:A'}, '9' x 23, 'a huge count: the decimal as it is');
    ok(!exists $m->{'clicks:A'}, 'not a number: left out');
    ok(!exists $m->{'revenue:A'}, '"1e5": left out');
    is($m->{'conversions:A'}, -3, 'a negative count, as Redis has it');
    unlike(error_log_since_mark(), qr/\[(?:alert|crit|emerg)\]/,
           'nothing alarming logged');
    my $j = status_json();
    ok(!exists $j->{arms}{A}{eligible_visitors}, 'json: left out too');
    is($j->{arms}{B}{eligible_visitors}, 2, 'json: arms.B.eligible_visitors');
});

subtest 'status: a hostile Redis answers the PFCOUNTs and HGETALL' => sub {
    my ($port) = Test::Retarget::free_ports(1);
    my $fake = Test::Retarget::FakeRedis->start(port => $port,
                                                mode => 'odd_counts');
    (my $http = campaign_http(redis => "127.0.0.1:$port"));
    ok(nginx_started({ http_config => $http, config => $SERVER }),
       'nginx started') or return;
    my ($ok, $last, @counts) = (0, '');
    for (1 .. 20) {
        my $r = http_req(uri => '/retarget_status?format=prometheus');
        my $j = http_req(uri => '/retarget_status');
        $ok++ if ($r->{status} // 0) == 200 && ($j->{status} // 0) == 200
                 && eval { JSON::PP::decode_json($j->{body}); 1 };
        $last = $r->{body} // '';
        push @counts, $last =~ /^retarget_arm_(?:eligible_visitors|clickers|converters)\{[^}]*\} (\S+)$/mg;
        sleep 0.05;
    }
    is($ok, 20, '20 times 200, JSON that parses');
    my @bad = grep { !/^(# (HELP|TYPE) \w+ .+|\w+(\{(\w+="([^"\\]|\\.)*",?)+\})? -?[\d.]+)$/ }
              split /\n/, $last;
    is_deeply(\@bad, [], 'prometheus: well-formed lines');
    ok(@counts && !grep({ $_ ne '12' } @counts),
       'only the PFCOUNT replies that are counts (12) are shown, not '
       . '2^53 or more: ' . join(',', @counts));
    like($last, qr/^retarget_arm_impressions\{arm="A"\} 9{23}$/m,
         'a huge count of HGETALL: the decimal');
    like($last, qr/^retarget_arm_buyer_revenue\{arm="A"\} 1\.25$/m,
         'an amount');
    unlike($last, qr/^retarget_arm_revenue\{arm="A"\}/m, '"12.5x": left out');
    like($last, qr/^retarget_arm_clicks\{arm="A"\} 0\nretarget_arm_clicks\{arm="B"\} 0$/m,
         'an integer where a string should be: not in today, 0');
    like($last, qr/^retarget_arm_buyers\{arm="A"\} 0$/m,
         'an array where a string should be: not in today, 0');
    unlike(error_log_since_mark(), qr/exited on signal/, 'no worker crashed');
    is(quit(), 1, 'nginx exited on QUIT');
    $fake->stop;
};

done_testing();
