# Issue 9, point 1: one visitor cannot overload Redis.  Everything kept
# per visitor is bounded (ngx_http_retarget_store.h): at most 50 cart
# lines (a new line beyond is refused, counted "cart_full"), at most 100
# fields in the meta hash (a new viewed product beyond is not written,
# counted "meta_full"), a line's quantity at most 999 (clamped, counted
# "qty_clamped"), prices at most 99,999,999.99 (beyond: dropped).  The
# page's read looks at the first 200 fields and values of at most 2306
# bytes, whatever wrote the hash, and its sums cannot overflow.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis;
use IO::Socket::INET;
use JSON::PP ();

use_redis();

my $SECRET = '0123456789abcdef0123456789abcdef';
my $V      = vid('bounds');
my $ALL    = join ' ', map { "$_=\$arg_$_" } qw(sku qty price name image url);

my $HTTP = qq{
    retarget_secret $SECRET;
    retarget_redis 127.0.0.1:\$TEST_NGINX_REDIS_PORT;
    # a page's read of a 1,000-field hash must answer, also under valgrind
    retarget_redis_timeout 2s;
    log_format rt '\$retarget_decision \$retarget_cart_count '
                  '\$retarget_cart_total';
};

my $SERVER = qq{
    retarget on;
    location / { access_log logs/rt.log rt; }
    location = /e/cart_add { retarget_event cart_add $ALL; return 200 "ok\\n"; }
    location = /e/product { retarget_event product $ALL; return 200 "ok\\n"; }
    location = /e/cart_clear { retarget_event cart_clear; return 200 "ok\\n"; }
    location = /status { retarget_status; }
};

my $PAGE = "<html><body><h1>Shop</h1></body></html>\n";

sub stats {
    my $l = redis_cmd('HGETALL', 'rt:stats:' . today());
    return { ref $l ? @$l : () };
}

# many requests over one keep-alive connection, answers read and dropped
sub burst {
    my (@uris) = @_;
    my $cookie = 'rt_vid=' . signed_cookie($V, $SECRET);
    while (my @chunk = splice @uris, 0, 100) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => server_port(),
                                      Timeout => 10) or die "connect: $!";
        my $req = '';
        for my $i (0 .. $#chunk) {
            my $close = $i == $#chunk ? "Connection: close\r\n" : '';
            $req .= "GET $chunk[$i] HTTP/1.1\r\nHost: localhost\r\n"
                  . "Cookie: $cookie\r\n$close\r\n";
        }
        print $s $req;
        my $all = '';
        local $/;
        $all = <$s>;
        close $s;
        my $n = () = $all =~ m{^HTTP/1\.1 200}mg;
        is($n, scalar @chunk, "burst: " . scalar(@chunk) . " answers 200")
            if $n != @chunk;
    }
}

sub page {
    my $r = http_req(uri => '/index.html',
                     headers => [ 'Accept: text/html',
                                  'Cookie: rt_vid='
                                  . signed_cookie($V, $SECRET) ]);
    is($r->{status}, 200, 'the page: 200');
    sleep 0.3;
    my @l = split /\n/, Test::Retarget::read_from(servroot() . '/logs/rt.log', 0);
    return $l[-1] // '';
}

sub hlen { redis_cmd('HLEN', $_[0]) }

sub lines {
    my ($kind) = @_;
    my $m = hash("rt:{$V}:meta");
    return grep { /^\Q$kind\E:/ } keys %$m;
}

# the bytes of an HGETALL's answer: what a page's read costs Redis
sub hgetall_bytes {
    my $l = redis_cmd('HGETALL', $_[0]);
    my $n = 0;
    $n += length($_) + 16 for ref $l ? @$l : ();
    return $n;
}

sub section_b {
    my ($name, $code) = @_;
    section($name, { http_config => $HTTP, config => $SERVER },
            { 'index.html' => $PAGE }, $code);
}

section_b('1,100 distinct cart_adds: 50 lines, the rest refused', sub {
    burst(map { "/e/cart_add?sku=S$_&name=Product+$_&price=1.00"
                . "&image=/img/$_.png&url=/p/$_" } 1 .. 1100);
    settle(2);
    is(hlen("rt:{$V}:cart"), 50, 'the cart hash holds 50 lines');
    is(scalar(lines('c')), 50, 'the meta holds 50 cart lines');
    cmp_ok(hlen("rt:{$V}:meta"), '<=', 100, 'the meta: at most 100 fields');
    my $s = stats();
    is($s->{cart_adds}, 50, 'cart_adds counts the 50 written');
    is($s->{cart_full}, 1050, 'cart_full counts the 1,050 refused');
    my $st = http_req(uri => '/status');
    my $j = eval { JSON::PP->new->decode($st->{body}) } || {};
    is($j->{today}{cart_full}, 1050, 'the status endpoint shows cart_full')
        or diag($st->{body});
    my $bytes = hgetall_bytes("rt:{$V}:meta");
    cmp_ok($bytes, '<=', 240 * 1024, "HGETALL of the meta: $bytes bytes");
    my $c = hash("rt:{$V}:cart");
    ok(exists $c->{S1} && exists $c->{S50} && !exists $c->{S51},
       'the first 50 stay, later ones were refused');
    # an existing line still takes more of the same
    burst('/e/cart_add?sku=S7&qty=2&price=1.00');
    settle();
    is(hash("rt:{$V}:cart")->{S7}, 3, 'a line of a full cart still grows');
    like(page(), qr/^too_soon 52 52\.00$/, "the page sums the 50 lines (S7 x 3)");
});

section_b('cleared and refilled, viewed without pages: the meta is bounded',
sub {
    burst(map { "/e/product?sku=P$_&name=Viewed+$_&price=3.00" } 1 .. 300);
    settle(1);
    my $n = hlen("rt:{$V}:meta");
    cmp_ok($n, '<=', 100, "300 views without a page: $n fields, at most 100");
    my $s = stats();
    cmp_ok($s->{meta_full} // 0, '>=', 200, 'meta_full counted');
    is($s->{product_views}, 300, 'every view is still counted');
    page();
    burst(map { "/e/cart_add?sku=A$_&price=2.00" } 1 .. 50);
    burst('/e/cart_clear');
    burst(map { "/e/cart_add?sku=B$_&price=2.00" } 1 .. 60);
    settle(2);
    $n = hlen("rt:{$V}:meta");
    cmp_ok($n, '<=', 100, "cleared and refilled: $n fields, at most 100");
    $s = stats();
    cmp_ok($s->{cart_full} // 0, '>=', 10, 'cart_full counted');
    cmp_ok(redis_cmd('LLEN', "rt:{$V}:viewed"), '<=', 20, 'viewed list: 20');
    # a page's read deletes the stale cart lines and old views
    page();
    settle(1);
    is(scalar(lines('v')), 8, 'after a page: the 8 newest viewed products');
    is(scalar(grep { /^c:A/ } lines('c')), 0,
       'after a page: the cleared lines are gone');
});

section_b('quantities are clamped to 999, totals never overflow', sub {
    burst(map { '/e/cart_add?sku=Q&qty=9999&price=99999999.99' } 1 .. 3);
    settle();
    is(hash("rt:{$V}:cart")->{Q}, 999, 'the cart: 999');
    my $m = hash("rt:{$V}:meta");
    is((split /\t/, $m->{'c:Q'} // '')[1], 999, 'c:Q: qty 999');
    is(stats()->{qty_clamped}, 3, 'qty_clamped 3');
    is(stats()->{cart_adds}, 3, 'cart_adds 3');
    # lines written by someone else, beyond every bound
    my $ms = int(time * 1000);
    redis_cmd('HSET', "rt:{$V}:meta",
              'c:BIG', "$ms\t99999999999999999\t99999999.99\tBig\t\t",
              'c:HUGE', "$ms\t5\t999999999999999999\tHuge\t\t");
    my $l = page();
    like($l, qr/^too_soon 2003 199799999980\.02$/,
         'count 999 + 999 + 5 (HUGE has no price), total 2 x 999 x '
         . '99999999.99') or diag($l);
    unlike($l, qr/-/, 'nothing negative');
});

section_b('prices beyond 99,999,999.99 are refused', sub {
    burst('/e/cart_add?sku=P1&price=100000000.00',
          '/e/cart_add?sku=P2&price=123456789012',
          '/e/cart_add?sku=P3&price=99999999.99');
    settle();
    # issue 10: a bad price drops the price, not the cart line
    is(stats()->{rejected}, undef, 'no event rejected');
    is(stats()->{'rejected:bad_price'}, 2, 'two prices dropped');
    is_deeply([ sort keys %{ hash("rt:{$V}:cart") } ], [qw(P1 P2 P3)],
              'every line in the cart');
    my $m = hash("rt:{$V}:meta");
    is_deeply([ map { (split /\t/, $m->{"c:$_"} // '', -1)[2] } qw(P1 P2 P3) ],
              [ '', '', '99999999.99' ],
              'only the price at the limit is kept');
});

section_b('a hash written by someone else: the read stays bounded', sub {
    my $ms = int(time * 1000);
    redis_cmd('HSET', "rt:{$V}:meta", 'c:LONG',
              "$ms\t1\t1.00\t" . ('n' x 5000) . "\t\t", 'c:OK',
              "$ms\t1\t1.00\tok\t\t", 'cart_updated', time);
    like(page(), qr/^too_soon 1 1\.00$/, 'a line of 5,000 bytes is not read');
    settle(1);
    is(redis_cmd('HEXISTS', "rt:{$V}:meta", 'c:LONG'), 0, 'and is deleted');
    redis_cmd('HSET', "rt:{$V}:meta", map { ("x$_", 'y' x 100) } 1 .. 1000);
    mark_error_log();
    page();
    settle(1);
    like(error_log_since_mark(), qr/retarget fetch: 100[23] fields, the first 200 read/,
         'the read looks at the first 200 fields');
});

# Two adds of one new sku on two workers (or servers) at a full cart:
# the first gets 1 from HINCRBY and refuses, the second gets 2 and saw
# the same 51 lines.  Seeded here as the second one sees it: the sku at
# qty 1 in a cart of 51 lines (or in a meta of 100 fields), no c: line.
section_b('a second add of a new sku at a full cart writes no line', sub {
    burst(map { "/e/cart_add?sku=S$_&price=1.00" } 1 .. 50);
    settle(1);
    is(hlen("rt:{$V}:cart"), 50, 'a full cart: 50 lines');
    redis_cmd('HSET', "rt:{$V}:cart", 'RACE', 1);
    burst('/e/cart_add?sku=RACE&price=1.00');
    settle();
    is(redis_cmd('HEXISTS', "rt:{$V}:meta", 'c:RACE'), 0,
       'qty 2 in a cart of 51 lines: no c:RACE line');
    is(scalar(lines('c')), 50, 'the meta holds 50 cart lines');
    is(stats()->{cart_full}, 1, 'cart_full counts the refusal');
    is(stats()->{cart_adds}, 50, 'cart_adds counts only the 50');
    # the first add's HDEL; an existing line of the full cart still grows
    redis_cmd('HDEL', "rt:{$V}:cart", 'RACE');
    burst('/e/cart_add?sku=S9&qty=4&price=1.00');
    settle();
    is(hash("rt:{$V}:cart")->{S9}, 5, 'S9 of the full cart: 5');
    is((split /\t/, hash("rt:{$V}:meta")->{'c:S9'} // '')[1], 5,
       'c:S9: qty 5');
    # a meta of 100 fields, and the sku at qty 1 with no line
    redis_cmd('DEL', "rt:{$V}:cart");
    redis_cmd('HSET', "rt:{$V}:cart", 'RACE', 1);
    my $n = hlen("rt:{$V}:meta");
    redis_cmd('HSET', "rt:{$V}:meta", map { ("x$_", 'y') } 1 .. 100 - $n);
    is(hlen("rt:{$V}:meta"), 100, 'a meta of 100 fields');
    burst('/e/cart_add?sku=RACE&price=1.00');
    settle();
    is(redis_cmd('HEXISTS', "rt:{$V}:meta", 'c:RACE'), 0,
       'qty 2 in a meta of 100 fields: no c:RACE line');
    is(hlen("rt:{$V}:meta"), 100, 'the meta stays at 100 fields');
    is(stats()->{cart_full}, 2, 'cart_full counts the refusal');
});

done_testing();
