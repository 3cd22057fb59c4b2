# Behaviour logging to Redis: retarget_event, the daily counters, the
# per-visitor keys, the abandoned-cart zset, the event stream, purchase
# idempotency, value checks, and what survives a graceful stop or a reload.
#
# Each section starts its own nginx against the file's private Redis
# (FLUSHALL first), waits until the worker's Redis link is up (a purchase
# is only de-duplicated on a working link), and reads Redis with redis_cmd.
# Counters are summed in the worker and flushed once a second: settle()
# waits for that flush.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis;
use JSON::PP ();
use Digest::SHA qw(sha256_hex);
use Time::HiRes qw(sleep time);
use IO::Select;
use IO::Socket::INET;

use_redis();

my $SECRET    = '0123456789abcdef0123456789abcdef';
my $RETENTION = 30 * 86400;               # retarget_retention default
my $STATS_TTL = 400 * 86400;

# every parameter of retarget_event but if=, from the query string
my $ALL = join ' ', map { "$_=\$arg_$_" }
          qw(sku qty price name image url order value user);

my @TYPES = qw(product cart_add cart_remove cart_clear checkout purchase
               identify newsletter_signup);

my $HTTP = qq{
    retarget_secret $SECRET;
    retarget_redis 127.0.0.1:\$TEST_NGINX_REDIS_PORT;
};

# /e/TYPE answers 200 text/plain (not a page view) and logs TYPE with
# every parameter; / serves static HTML pages.
my $SERVER = q{
    retarget on;
    location / { }
} . join('', map { qq{
    location = /e/$_ { retarget_event $_ $ALL; return 200 "ok\\n"; }} } @TYPES)
  . "\n";

#--------------------------------------------------------------------------
# helpers
#--------------------------------------------------------------------------

sub cookie_value { signed_cookie($_[0], $SECRET) }

sub stats_key { ($_[0] // 'rt:') . 'stats:' . today() }

sub stats {
    my ($key) = @_;
    my $l = redis_cmd('HGETALL', $key // stats_key());
    return { ref $l ? @$l : () };
}

sub keys_all { [ sort @{ redis_cmd('KEYS', '*') || [] } ] }

sub visitor_keys { [ grep { /\{/ } @{ keys_all() } ] }

# the stream's entries, the JSON of field "e" decoded
sub events {
    my ($key) = @_;
    my $l = redis_cmd('XRANGE', $key // 'rt:events', '-', '+');
    my @ev;
    for my $entry (ref $l ? @$l : ()) {
        my %f = @{ $entry->[1] };
        my $e = eval { JSON::PP->new->utf8->decode($f{e}) };
        ok($e, "stream entry $entry->[0] is JSON") or diag($@, $f{e});
        push @ev, $e || {};
    }
    return @ev;
}

sub ttl_ok {
    my ($key, $max, $name) = @_;
    my $ttl = redis_cmd('TTL', $key);
    ok($ttl >= 1 && $ttl <= $max, "$name: TTL of $key in 1..$max")
        or diag("TTL $key = $ttl");
}

# a time in milliseconds, within 10 seconds of now
sub near_ms {
    my ($t, $name) = @_;
    ok(defined $t && $t =~ /^\d{13}$/ && abs($t / 1000 - time) < 10,
       "$name is now, in ms") or diag('got ' . ($t // 'undef'));
}

# the visitor's cart lines in the meta: sku => [MS, QTY, PRICE, ...]
sub cart_lines { meta_items('c', @_) }

sub meta_items {
    my ($kind, $vid) = @_;
    my $meta = hash("rt:{" . ($vid // vid('returning')) . "}:meta");
    return { map { my $f = $_; $f =~ s/^\Q$kind\E://;
                   ($f => [ split /\t/, $meta->{$_}, -1 ]) }
             grep { /^\Q$kind\E:/ } keys %$meta };
}

sub near_now {
    my ($t, $name) = @_;
    ok(defined $t && $t =~ /^\d+$/ && abs($t - time) < 10, "$name is now")
        or diag('got ' . ($t // 'undef'));
}

# one request; vid => the returning visitor's id (a valid signed cookie)
sub get {
    my ($uri, %o) = @_;
    my @h = @{ $o{headers} || [] };
    my @c;
    push @c, 'rt_vid=' . cookie_value($o{vid}) if $o{vid};
    push @c, $o{cookie} if $o{cookie};
    push @h, 'Cookie: ' . join('; ', @c) if @c;
    push @h, 'Accept: text/html';
    my $r = http_req(uri => $uri, headers => \@h);
    if (exists $o{status}) {
        is($r->{status}, $o{status}, "GET $uri: $o{status}")
            or diag($r->{error} // $r->{raw});
    }
    return $r;
}

# a fresh nginx with this file's server, and an empty Redis
sub section {
    my ($name, $conf, $code) = @_;
    Test::Retarget::Redis::section($name,
        { http_config => $HTTP, config => $SERVER, %{ $conf || {} } },
        { 'index.html' => "<html><body><h1>Shop</h1></body></html>\n",
          'style.css' => "body { color: red }\n" },
        $code);
}

my $V = vid('returning');

#--------------------------------------------------------------------------
# product: viewed list, product hash, meta, counter, stream
#--------------------------------------------------------------------------

section('product view of a returning visitor', {}, sub {
    get('/e/product?sku=SKU-1&name=Red+Shoe%20%C3%A9&price=49.90'
        . '&image=/img/1.png&url=/p/1', vid => $V, status => 200);
    settle();

    is(stats()->{product_views}, 1, 'product_views 1');
    is_deeply(redis_cmd('LRANGE', "rt:{$V}:viewed", 0, -1), ['SKU-1'],
              'viewed list');
    # issue 9, point 3: values from the query string are the visitor's
    # word, not the shop's: no shared product hash (t/078-product-trust.t)
    is(redis_cmd('EXISTS', 'rt:p:SKU-1'), 0,
       'no product hash from query arguments (not "catalog")');
    my $meta = hash("rt:{$V}:meta");
    near_now($meta->{last_seen}, 'meta last_seen');
    near_now($meta->{first_seen}, 'meta first_seen');
    my ($ms, @v) = split /\t/, $meta->{'v:SKU-1'} // '', -1;
    near_ms($ms, 'meta v:SKU-1: MS');
    is_deeply(\@v, [ '49.90', "Red Shoe \xc3\xa9", '/img/1.png', '/p/1' ],
              'meta v:SKU-1: price, name, image, url');
    ttl_ok("rt:{$V}:viewed", $RETENTION, 'viewed');
    ttl_ok("rt:{$V}:meta", $RETENTION, 'meta');
    ttl_ok(stats_key(), $STATS_TTL, 'stats');
    cmp_ok(redis_cmd('TTL', stats_key()), '>', $STATS_TTL - 60,
           'stats: TTL is about 400 days');
    is(redis_cmd('EXISTS', "rt:{$V}:cart"), 0, 'a view does not touch the cart');
    is(redis_cmd('EXISTS', 'rt:carts'), 0, 'nor the abandoned-cart queue');

    my @ev = events();
    is(scalar @ev, 1, 'one stream entry');
    my $e = $ev[0] || {};
    is($e->{type}, 'product', 'stream: type');
    is($e->{vid}, $V, 'stream: vid');
    ok(JSON::PP::is_bool($e->{new}) && !$e->{new}, 'stream: new is false');
    is($e->{uri}, '/e/product', 'stream: uri');
    is($e->{sku}, 'SKU-1', 'stream: sku');
    is($e->{qty}, 1, 'stream: qty defaults to 1');
    ok(defined $e->{qty} && !ref $e->{qty}
       && JSON::PP->new->encode([$e->{qty}]) eq '[1]',
       'stream: qty is a JSON integer');
    is($e->{name}, "Red Shoe \x{e9}", 'stream: name');
    is($e->{price}, '49.90', 'stream: price');
    is($e->{image}, '/img/1.png', 'stream: image');
    is($e->{url}, '/p/1', 'stream: url');
    near_now($e->{ts}, 'stream: ts');
    ok(defined $e->{id} && length $e->{id}, 'stream: an event id');
    ok(!exists $e->{$_}, "stream: no $_ when absent")
        for qw(order value user);
});

section('viewed: newest first, each sku once, capped at 20', {}, sub {
    get("/e/product?sku=S$_", vid => $V) for 1 .. 25;
    get('/e/product?sku=S10', vid => $V);
    settle(0.5);
    my @want = ('S10', map { "S$_" } grep { $_ != 10 } reverse 6 .. 25);
    is_deeply(redis_cmd('LRANGE', "rt:{$V}:viewed", 0, -1), \@want,
              'viewed: 20 newest, S10 moved to the front, not twice');
    get("/e/product?sku=S$_", vid => $V) for 26 .. 27;
    settle(0.5);
    is_deeply(redis_cmd('LRANGE', "rt:{$V}:viewed", 0, -1),
              [ 'S27', 'S26', @want[0 .. 17] ], 'viewed: capped at 20');
    is(redis_cmd('EXISTS', 'rt:p:S1'), 0,
       'no product hash without name or price');
    is_deeply(meta_items('v'), {},
              'nor a v: line in the meta: nothing to show');
    get('/e/product?sku=S1&price=5', vid => $V);
    get('/e/product?sku=S2&name=Two', vid => $V);
    settle(0.5);
    my $v = meta_items('v');
    is_deeply([ map { [ @{ $v->{$_} }[1 .. 4] ] } qw(S1 S2) ],
              [ [ '5', '', '', '' ], [ '', 'Two', '', '' ] ],
              'v: lines with a price or a name only');
});

#--------------------------------------------------------------------------
# the cart
#--------------------------------------------------------------------------

section('cart_add, cart_remove, cart_clear', {}, sub {
    get('/e/cart_add?sku=MUG&qty=2&price=10.00&name=Big+Mug&image=/m.png'
        . '&url=/p/mug', vid => $V, status => 200);
    get('/e/cart_add?sku=MUG&qty=3&price=10.00&name=Big+Mug&image=/m.png'
        . '&url=/p/mug', vid => $V, status => 200);
    get('/e/cart_add?sku=TEE&price=19.5&name=Tee&url=https://shop.example/tee',
        vid => $V, status => 200);
    settle();

    is_deeply(hash("rt:{$V}:cart"), { MUG => 5, TEE => 1 },
              'cart: quantities add up, qty defaults to 1');
    my $lines = cart_lines();
    is_deeply([ sort keys %$lines ], [qw(MUG TEE)],
              'meta: a c:SKU line per cart line');
    is_deeply([ @{ $lines->{MUG} || [] }[1 .. 5] ],
              [ 5, '10.00', 'Big Mug', '/m.png', '/p/mug' ],
              'meta c:MUG: the total quantity, price, name, image, url');
    is_deeply([ @{ $lines->{TEE} || [] }[1 .. 5] ],
              [ 1, '19.5', 'Tee', '', 'https://shop.example/tee' ],
              'meta c:TEE: an absent image is empty');
    near_ms($lines->{MUG}[0], 'c:MUG: MS');
    cmp_ok($lines->{TEE}[0], '>=', $lines->{MUG}[0],
           'c:TEE written after c:MUG');
    is(redis_cmd('EXISTS', "rt:{$V}:cartinfo"), 0, 'no cartinfo key');
    is(redis_cmd('EXISTS', 'rt:p:MUG'), 0,
       'no product hash from the query arguments of a cart_add');
    my $score = redis_cmd('ZSCORE', 'rt:carts', $V);
    near_now($score, 'rt:carts score');
    near_now(hash("rt:{$V}:meta")->{cart_updated}, 'meta cart_updated');
    ttl_ok("rt:{$V}:$_", $RETENTION, $_) for qw(cart meta);
    is(stats()->{cart_adds}, 3, 'cart_adds 3');

    my @ev = events();
    is_deeply([ map { [ $_->{type}, $_->{sku}, $_->{qty} ] } @ev ],
              [ ['cart_add', 'MUG', 2], ['cart_add', 'MUG', 3],
                ['cart_add', 'TEE', 1] ],
              'stream: the three cart_add events');

    get('/e/cart_remove?sku=MUG', vid => $V, status => 200);
    settle();
    is_deeply(hash("rt:{$V}:cart"), { TEE => 1 }, 'cart_remove: line gone');
    is_deeply([ keys %{ cart_lines() } ], ['TEE'],
              'cart_remove: its c: line gone from the meta');
    ok(defined redis_cmd('ZSCORE', 'rt:carts', $V),
       'cart_remove: still in the abandoned-cart queue');
    is(stats()->{cart_removes}, 1, 'cart_removes 1');

    get('/e/cart_clear', vid => $V, status => 200);
    settle();
    is(redis_cmd('EXISTS', "rt:{$V}:cart"), 0, 'cart_clear: cart deleted');
    my $cleared = hash("rt:{$V}:meta")->{cart_cleared};
    near_ms($cleared, 'cart_clear: meta cart_cleared');
    cmp_ok($cleared, '>=', cart_lines()->{TEE}[0],
           'cart_clear: the c:TEE line is stale (MS <= cart_cleared)');
    is(redis_cmd('ZSCORE', 'rt:carts', $V), undef,
       'cart_clear: out of the abandoned-cart queue');
    near_now(hash("rt:{$V}:meta")->{cart_updated}, 'cart_clear: cart_updated');
    is(stats()->{cart_clears}, 1, 'cart_clears 1');
    is_deeply([ map { $_->{type} } events() ],
              [ qw(cart_add cart_add cart_add cart_remove cart_clear) ],
              'stream: every cart event, in order');
});

section('checkout, identify, custom event', {}, sub {
    get('/e/checkout', vid => $V, status => 200);
    get('/e/identify?user=customer-42', vid => $V, status => 200);
    get('/e/newsletter_signup?value=5', vid => $V, status => 200);
    settle();

    my $meta = hash("rt:{$V}:meta");
    near_now($meta->{checkout}, 'meta checkout');
    is($meta->{user}, sha256_hex('customer-42'),
       'meta user: the SHA-256 of the value, not the value');
    ttl_ok("rt:{$V}:meta", $RETENTION, 'meta');
    my $s = stats();
    is($s->{checkouts}, 1, 'checkouts 1');
    is($s->{identifies}, 1, 'identifies 1');
    is($s->{'events:newsletter_signup'}, 1, 'events:newsletter_signup 1');
    my @ev = events();
    is_deeply([ map { $_->{type} } @ev ],
              [ qw(checkout identify newsletter_signup) ], 'stream: types');
    ok(!exists $ev[1]{user},
       'stream: the identify value is not streamed (kept in the meta only)');
    is($ev[2]{value}, '5', 'stream: value of a custom event');
    is_deeply([ grep { !/^rt:\{\Q$V\E\}:(?:meta|events)$/ }
                @{ visitor_keys() } ], [],
              'no cart or viewed keys from these events');
});

#--------------------------------------------------------------------------
# purchases
#--------------------------------------------------------------------------

section('purchase empties the cart; counted once per order id', {}, sub {
    get('/e/cart_add?sku=MUG&qty=2', vid => $V);
    get('/e/purchase?order=A-1001&value=24.00', vid => $V, status => 200);
    settle(0.5);
    is(redis_cmd('EXISTS', "rt:{$V}:cart"), 0, 'purchase: cart deleted');
    is(redis_cmd('ZSCORE', 'rt:carts', $V), undef,
       'purchase: out of the abandoned-cart queue');
    my $meta = hash("rt:{$V}:meta");
    near_now($meta->{purchased}, 'meta purchased');
    near_ms($meta->{cart_cleared}, 'meta cart_cleared');
    cmp_ok($meta->{cart_cleared}, '>=', cart_lines()->{MUG}[0],
           'the c:MUG line is stale');
    is(redis_cmd('GET', 'rt:order:A-1001'), '1', 'order key set');
    ttl_ok('rt:order:A-1001', $RETENTION, 'order');

    # the thank-you page again (reloaded), after a new cart line
    get('/e/cart_add?sku=TEE', vid => $V);
    get('/e/purchase?order=A-1001&value=24.00', vid => $V, status => 200);
    # another visitor's order, and one without an order id
    get('/e/purchase?order=A-1002&value=10.50', vid => vid('other'));
    get('/e/purchase?value=1.25', vid => vid('third'));
    settle();

    my $s = stats();
    is($s->{purchases}, 3, 'purchases 3 (the duplicate not counted)');
    is($s->{purchases_duplicate}, 1, 'purchases_duplicate 1');
    is($s->{revenue}, '35.75', 'revenue 24 + 10.50 + 1.25');
    is_deeply(hash("rt:{$V}:cart"), { TEE => 1 },
              'the duplicate did not empty the new cart');
    cmp_ok(cart_lines()->{TEE}[0], '>', hash("rt:{$V}:meta")->{cart_cleared},
           'nor made its line stale');
    ok(defined redis_cmd('ZSCORE', 'rt:carts', $V),
       'the duplicate did not touch the abandoned-cart queue');
    # (entries of different visitors need not come in request order)
    my @p = sort { ($a->{order} // '~') cmp ($b->{order} // '~') }
            grep { $_->{type} eq 'purchase' } events();
    is_deeply([ map { [ $_->{order}, $_->{value} ] } @p ],
              [ ['A-1001', '24.00'], ['A-1002', '10.50'], [undef, '1.25'] ],
              'stream: one entry per counted purchase');
});

section('purchase: "purchased" goes out at once, the rest after the order check', {}, sub {
    get('/e/cart_add?sku=MUG', vid => $V);
    settle(0.3);
    my $mon = monitor_start();
    get('/e/purchase?order=I-1&value=5', vid => $V, status => 200);
    my $cmds = monitor_read($mon, 0.5);
    my $at = sub {
        my ($re) = @_;
        my ($i) = grep { join(' ', @{ $cmds->[$_] }) =~ $re } 0 .. $#$cmds;
        return $i;
    };
    my $purchased = $at->(qr/^HSET \S+:meta purchased \d+$/);
    my $set = $at->(qr/^SET rt:order:I-1 1 NX/);
    my $hmget = $at->(qr/^HMGET \S+:meta clicked seen$/);
    my $del = $at->(qr/^DEL \S+:cart$/);
    ok(defined $purchased && defined $set && $purchased < $set,
       'HSET meta purchased before the order check')
        or diag(explain $cmds);
    ok(defined $hmget && $hmget > $set && defined $del && $del > $hmget,
       'the attribution read with it, the cart emptied after both');
    settle();
    is(stats()->{purchases}, 1, 'purchases 1');
});

section('revenue is summed exactly (HINCRBYFLOAT)', {}, sub {
    get('/e/purchase?order=B-1&value=24', vid => $V);
    settle();
    is(stats()->{revenue}, '24', 'revenue "24"');
    get("/e/purchase?order=B-$_&value=0.10", vid => $V) for 2 .. 4;
    settle();
    is(stats()->{revenue}, '24.3', 'revenue 24 + 3 x 0.10');
    is(stats()->{purchases}, 4, 'purchases 4');
});

#--------------------------------------------------------------------------
# keys: hash tags, nothing else
#--------------------------------------------------------------------------

section('per-visitor keys share the hash tag {vid}', {}, sub {
    get('/e/product?sku=S1&name=N', vid => $V);
    get('/e/cart_add?sku=S1', vid => $V);
    get('/e/checkout', vid => $V);
    settle();
    is_deeply(keys_all(),
              [ sort('rt:carts', 'rt:events', stats_key(),
                     map { "rt:{$V}:$_" } qw(cart events meta viewed)) ],
              'exactly the documented keys');
    for my $k (@{ keys_all() }) {
        next unless $k =~ /\Q$V\E/;
        like($k, qr/^rt:\{\Q$V\E\}:(?:cart|events|meta|viewed)$/,
             "$k: the vid is a hash tag");
        ttl_ok($k, $RETENTION, $k);
    }
});

#--------------------------------------------------------------------------
# new visitors: counters and stream only
#--------------------------------------------------------------------------

section('a brand-new id creates no per-visitor keys', {}, sub {
    my $r1 = get('/e/cart_add?sku=S1&qty=2', status => 200);
    my $r2 = get('/e/product?sku=S2&name=Thing&price=3', status => 200);
    my $r3 = get('/index.html', status => 200);
    my ($c1) = grep { /^rt_vid=/ } @{ $r1->{headers}{'set-cookie'} || [] };
    my ($new_vid) = ($c1 // '') =~ /^rt_vid=([A-Za-z0-9_-]{22})\./;
    ok($new_vid, 'a visitor cookie was set');
    settle();

    is_deeply(visitor_keys(), [], 'no rt:{vid} keys');
    is(redis_cmd('EXISTS', 'rt:carts'), 0, 'not in the abandoned-cart queue');
    is(redis_cmd('EXISTS', 'rt:p:S2'), 0,
       'a new visitor\'s query arguments write no product hash');
    my $s = stats();
    is($s->{cart_adds}, 1, 'cart_adds 1');
    is($s->{product_views}, 1, 'product_views 1');
    is($s->{pageviews}, 1, 'pageviews 1 (the HTML page only)');
    is($s->{visitors_new}, 1, 'visitors_new 1 (page views only)');
    is($s->{notices}, 1, 'notices 1');
    my @ev = events();
    is(scalar @ev, 2, 'two stream entries (page views are not streamed)');
    ok($ev[0]{new} && JSON::PP::is_bool($ev[0]{new}), 'stream: new is true');
    ok(!exists $ev[0]{vid},
       'stream: no vid for a new id (no key could find the entry to erase it)');
    is($ev[0]{qty}, 2, 'stream: qty');

    # the browser comes back with its cookie: now the keys start
    get('/e/cart_add?sku=S1', vid => $new_vid, status => 200);
    settle();
    is_deeply(hash("rt:{$new_vid}:cart"), { S1 => 1 },
              'returning with the cookie: cart written');
    is(stats()->{visitors_new}, 1, 'visitors_new still 1');
    my @ev2 = events();
    ok(@ev2 == 3 && !$ev2[2]{new}, 'stream: new is false the second time');
});

#--------------------------------------------------------------------------
# page views
#--------------------------------------------------------------------------

section('page views: counted, streamed only with retarget_stream_pageviews', {
    config => $SERVER . q{
        location /sp/ { retarget_stream_pageviews on; alias $TEST_NGINX_HTML_DIR/; }
        location /off/ { retarget off; alias $TEST_NGINX_HTML_DIR/; }
    },
}, sub {
    get('/index.html', vid => $V, status => 200);
    get('/style.css', vid => $V, status => 200);
    get('/nope.html', vid => $V, status => 404);
    get('/off/index.html', vid => $V, status => 200);
    settle();
    is(stats()->{pageviews}, 1,
       'pageviews: HTML 200 of retarget-on locations only');
    is(redis_cmd('EXISTS', 'rt:events'), 0, 'not streamed by default');
    is_deeply(visitor_keys(), [], 'a plain page view writes no visitor key');

    get('/sp/index.html', vid => $V, status => 200);
    get('/sp/style.css', vid => $V, status => 200);
    get('/sp/index.html', status => 200);
    settle();
    is(stats()->{pageviews}, 3, 'pageviews 3');
    is(stats()->{visitors_new}, 1, 'visitors_new 1');
    my @ev = events();
    is(scalar @ev, 2, 'two HTML page views streamed, not the CSS');
    like($ev[0]{type} // '', qr/^page_?views?$/, 'stream: a page view type')
        and note("page view type: $ev[0]{type}");
    is($ev[0]{uri}, '/sp/index.html', 'stream: uri');
    is($ev[0]{vid}, $V, 'stream: vid');
    ok(!$ev[0]{new}, 'stream: returning');
    ok($ev[1]{new}, 'stream: the second one is a new visitor');
    isnt($ev[0]{id}, $ev[1]{id}, 'stream: distinct ids');
    is_deeply(visitor_keys(), [ "rt:{$V}:events" ],
              'streamed page views write no visitor key but the index of '
              . 'the visitor\'s stream entries');
});

section('an HTML product page: page view and product view', {
    config => $SERVER . q{
        location /shop/ {
            retarget_event product sku=$arg_sku name=$arg_name;
            alias $TEST_NGINX_HTML_DIR/;
        }
    },
}, sub {
    get('/shop/index.html?sku=P1&name=Lamp', vid => $V, status => 200);
    settle();
    my $s = stats();
    is($s->{pageviews}, 1, 'pageviews 1');
    is($s->{product_views}, 1, 'product_views 1');
    is_deeply(redis_cmd('LRANGE', "rt:{$V}:viewed", 0, -1), ['P1'], 'viewed');
});

#--------------------------------------------------------------------------
# when no event is logged
#--------------------------------------------------------------------------

section('if=: empty or "0" logs nothing', {
    config => $SERVER . q{
        location = /if { retarget_event cart_add sku=$arg_sku if=$arg_add; return 200 "ok\n"; }
    },
}, sub {
    get('/if?sku=S1', vid => $V, status => 200);
    get('/if?sku=S1&add=', vid => $V, status => 200);
    get('/if?sku=S1&add=0', vid => $V, status => 200);
    get('/if', vid => $V, status => 200);
    settle();
    is_deeply(keys_all(), [], 'nothing written, nothing counted');

    get('/if?sku=S1&add=1', vid => $V, status => 200);
    get('/if?sku=S1&add=yes', vid => $V, status => 200);
    settle();
    is(stats()->{cart_adds}, 2, 'cart_adds 2');
    is_deeply(hash("rt:{$V}:cart"), { S1 => 2 }, 'cart');
    is(stats()->{rejected}, undef, 'nothing rejected');
});

section('if=: a false condition is no event, not a rejected one', {
    config => $SERVER . q{
        location = /if { retarget_event cart_add sku=$arg_sku qty=$arg_qty if=$arg_add; return 200 "ok\n"; }
    },
}, sub {
    # a product page with a conditional cart_add: an odd sku or qty on
    # a request that adds nothing is not an invalid event
    get('/if?sku=a+b', vid => $V, status => 200);
    get('/if?sku=S1&qty=0', vid => $V, status => 200);
    settle();
    is_deeply(keys_all(), [], 'nothing counted (not even "rejected")')
        or diag(explain stats());
});

section('only answers below 400 log events', {
    config => $SERVER . q{
        location = /nf { retarget_event cart_add sku=$arg_sku; return 404; }
        location = /err { retarget_event cart_add sku=$arg_sku; return 500; }
        location = /forbidden { retarget_event purchase order=$arg_order; return 403; }
        location /gone/ { retarget_event product sku=$arg_sku; }
        location = /moved { retarget_event cart_add sku=$arg_sku; return 302 /index.html; }
    },
}, sub {
    get('/nf?sku=S1', vid => $V, status => 404);
    get('/err?sku=S1', vid => $V, status => 500);
    get('/forbidden?order=O1', vid => $V, status => 403);
    get('/gone/x.html?sku=S1', vid => $V, status => 404);
    settle();
    is_deeply(keys_all(), [], '4xx/5xx answers: nothing written or counted');

    get('/moved?sku=S2', vid => $V, status => 302);
    settle();
    is(stats()->{cart_adds}, 1, 'a 302 answer logs its event');
    is_deeply(hash("rt:{$V}:cart"), { S2 => 1 }, 'cart after the 302');
});

section('visitors who are not tracked log nothing', {
    config => $SERVER . q{
        location = /bot { retarget_bypass $arg_bot; retarget_event cart_add sku=$arg_sku; return 200 "ok\n"; }
        location = /optin { retarget_consent optin; retarget_event cart_add sku=$arg_sku; return 200 "ok\n"; }
    },
}, sub {
    get('/e/cart_add?sku=S1', vid => $V, headers => ['Sec-GPC: 1'],
        status => 200);
    get('/e/cart_add?sku=S1', vid => $V, cookie => consent_cookie('out'),
        status => 200);
    get('/optin?sku=S1', vid => $V, status => 200);
    get('/bot?sku=S1&bot=1', vid => $V, status => 200);
    settle();
    is(redis_cmd('EXISTS', 'rt:events'), 0, 'no stream entry');
    is_deeply(visitor_keys(), [], 'no visitor key');
    my $s = stats();
    is($s->{cart_adds}, undef, 'no cart_adds');
    is($s->{gpc}, 1, 'the GPC request is counted as gpc');

    get('/optin?sku=S1', vid => $V, cookie => consent_cookie('in'),
        status => 200);
    get('/bot?sku=S2&bot=0', vid => $V, status => 200);
    settle();
    is(stats()->{cart_adds}, 2, 'opted in / not a bot: logged');
});

#--------------------------------------------------------------------------
# invalid values: a value the event needs rejects it (counted, nothing
# written); any other is dropped and the event goes on without it
#--------------------------------------------------------------------------

my @INVALID = (
    [ 'sku of 65 bytes',           'sku=' . ('s' x 65) ],
    [ 'sku with a space',          'sku=a+b' ],
    [ 'sku with %20',              'sku=a%20b' ],
    [ 'sku with a tab',            'sku=a%09b' ],
    [ 'sku with a control char',   'sku=a%01b' ],
    [ 'sku with DEL',              'sku=a%7Fb' ],
    [ 'sku with a newline',        'sku=a%0D%0Ab' ],
    [ 'sku not UTF-8',             'sku=a%FF' ],
    [ 'qty 0',                     'sku=S&qty=0' ],
    [ 'qty 10000',                 'sku=S&qty=10000' ],
    [ 'qty -1',                    'sku=S&qty=-1' ],
    [ 'qty 1.5',                   'sku=S&qty=1.5' ],
    [ 'qty abc',                   'sku=S&qty=abc' ],
    [ 'qty 99999999999999999999',  'sku=S&qty=99999999999999999999' ],
    [ 'no sku',                    'qty=1' ],
);

# [ name, query, the parameter dropped ]
my @DROPPED = (
    [ 'price with 5 decimals',     'sku=S&price=1.23456', 'price' ],
    [ 'price abc',                 'sku=S&price=abc', 'price' ],
    [ 'price -5',                  'sku=S&price=-5', 'price' ],
    [ 'price 1e3',                 'sku=S&price=1e3', 'price' ],
    [ 'price .5',                  'sku=S&price=.5', 'price' ],
    [ 'price 5.',                  'sku=S&price=5.', 'price' ],
    [ 'price 1,50',                'sku=S&price=1,50', 'price' ],
    [ 'price 1.2.3',               'sku=S&price=1.2.3', 'price' ],
    [ 'value with 5 decimals',     'sku=S&value=0.00001', 'value' ],
    [ 'value NaN',                 'sku=S&value=NaN', 'value' ],
    [ 'name of 201 bytes',         'sku=S&name=' . ('n' x 201), 'name' ],
    [ 'name with a newline',       'sku=S&name=a%0Ab', 'name' ],
    [ 'name with a tab',           'sku=S&name=a%09b', 'name' ],
    [ 'name not UTF-8',            'sku=S&name=caf%E9', 'name' ],
    [ 'name with a lone %FF',      'sku=S&name=%FF', 'name' ],
    [ 'image javascript:',         'sku=S&image=javascript:alert(1)', 'image' ],
    [ 'url javascript:',           'sku=S&url=javascript:alert(1)', 'url' ],
    [ 'url JavaScript: encoded',   'sku=S&url=JavaScript%3Aalert%281%29', 'url' ],
    [ 'url data:',                 'sku=S&url=data:text/html,x', 'url' ],
    [ 'url ///path',               'sku=S&url=///evil.example/x', 'url' ],
    [ 'url /\\host',               'sku=S&url=/%5Cevil.example/x', 'url' ],
    [ 'url relative',              'sku=S&url=p/1', 'url' ],
    [ 'url with a space',          'sku=S&url=/p/a+b', 'url' ],
    [ 'url with a newline',        'sku=S&url=/p%0D%0ALocation:x', 'url' ],
    [ 'image not UTF-8',           'sku=S&image=/i%FF.png', 'image' ],
    [ 'url of 1025 bytes',         'sku=S&url=/' . ('u' x 1024), 'url' ],
    [ 'order with a control char', 'sku=S&order=a%0Ab', 'order' ],
    [ 'order not UTF-8',           'sku=S&order=%C0%AF', 'order' ],
    [ 'user with a control char',  'sku=S&user=a%0Db', 'user' ],
    [ 'user not UTF-8',            'sku=S&user=%C3%28', 'user' ],
);

# each request carries a marker (order=cN, or name=cN for the order
# cases; the identify value is not streamed) that the stream would show if the event got through
sub marked {
    my ($query, $i) = @_;
    return $query =~ /(?:^|&)order=/ ? "$query&name=c$i" : "$query&order=c$i";
}

sub markers { map { grep { defined } $_->{order}, $_->{name} } @_ }

section('invalid values the event needs reject it, counted, and write nothing', {}, sub {
    for my $i (0 .. $#INVALID) {
        get('/e/cart_add?' . marked($INVALID[$i][1], $i), vid => $V,
            status => 200);
    }
    # the same values on other event types
    get('/e/product?sku=a+b', vid => $V);
    get('/e/purchase?order=a%0Ab&value=1', vid => $V);
    get('/e/identify', vid => $V);
    get('/e/identify?user=a%0Ab', vid => $V);
    settle();

    my %through = map { $_ => 1 } markers(events());
    ok(!$through{"c$_"}, "rejected: $INVALID[$_][0]") for 0 .. $#INVALID;
    my $s = stats();
    is($s->{rejected}, @INVALID + 4, 'rejected counts every rejected event');
    is($s->{'rejected:bad_sku'}, 9, 'rejected:bad_sku 9');
    is($s->{'rejected:bad_qty'}, 6, 'rejected:bad_qty 6');
    is($s->{'rejected:no_sku'}, 1, 'rejected:no_sku 1');
    is($s->{'rejected:bad_order'}, 1, 'rejected:bad_order 1');
    is($s->{'rejected:no_user'}, 1, 'rejected:no_user 1');
    is($s->{'rejected:bad_user'}, 1, 'rejected:bad_user 1');
    is_deeply([ grep { !/^rejected/ } sort keys %$s ], [],
              'no other counter moved');
    is_deeply(keys_all(), [ stats_key() ],
              'nothing else written: no stream, product or visitor key');
});

section('other invalid values are dropped: the event goes on without them', {}, sub {
    for my $i (0 .. $#DROPPED) {
        get('/e/cart_add?' . marked($DROPPED[$i][1], $i), vid => $V,
            status => 200);
    }
    get('/e/purchase?order=P-1&value=abc', vid => vid('buyer'));
    get('/e/newsletter_signup?name=%FF&value=3', vid => $V);
    settle();

    my @ev = events();
    my %by = map { (($_->{order} // $_->{name} // '') => $_) } @ev;
    for my $i (0 .. $#DROPPED) {
        my $e = $by{"c$i"};
        ok($e && !exists $e->{ $DROPPED[$i][2] },
           "kept without its $DROPPED[$i][2]: $DROPPED[$i][0]")
            or diag(explain $e);
    }
    my $s = stats();
    is($s->{rejected}, undef, 'no event rejected');
    is($s->{cart_adds}, scalar @DROPPED, 'cart_adds: one each');
    is($s->{purchases}, 1, 'the purchase with a bad value is counted');
    is($s->{revenue}, undef, '... without revenue');
    is($s->{'events:newsletter_signup'}, 1, 'the custom event too');
    my ($p) = grep { $_->{type} eq 'purchase' } @ev;
    ok($p && $p->{order} eq 'P-1' && !exists $p->{value},
       'stream: the purchase, without its value');
    # value: 2 on cart_add and the purchase's; name: 5 and the custom one
    my %want = (price => 8, value => 3, name => 6, image => 2, url => 9,
                order => 2, user => 2);
    is($s->{"rejected:bad_$_"}, $want{$_}, "rejected:bad_$_ $want{$_}")
        for sort keys %want;
    is_deeply(hash("rt:{$V}:cart"), { S => scalar @DROPPED },
              'the cart line kept every time');
});

my @VALID = (
    [ 'sku of 64 bytes',        'sku=' . ('s' x 64) ],
    [ 'sku with punctuation',   'sku=AB-12_x.y%2Fz' ],
    [ 'qty 9999'      ,         'sku=S&qty=9999' ],
    [ 'price without decimals', 'sku=S&price=12' ],
    [ 'price with one decimal', 'sku=S&price=12.5' ],
    [ 'price with two',         'sku=S&price=0.05' ],
    [ 'name of 200 bytes',      'sku=S&name=' . ('n' x 200) ],
    [ 'name with UTF-8',        'sku=S&name=Caf%C3%A9+%E2%98%95+%F0%9F%8D%B0' ],
    [ 'name with quotes, <>&',  'sku=S&name=%22a%22+%3Cb%3E+%26+c' ],
    [ 'image path',             'sku=S&image=/img/a.png' ],
    [ 'image https',            'sku=S&image=https://cdn.example/a.png' ],
    [ 'url http',               'sku=S&url=http://shop.example/p?x=1' ],
    [ 'url path and query',     'sku=S&url=/p/1%3Fc%3Dred' ],
    [ 'empty optional values',  'sku=S&qty=&price=&name=&image=&url=&value=' ],
    [ 'price with 4 decimals',  'sku=S&price=15.0050' ],
    [ 'url //host is https',    'sku=S&url=//shop.example/p/1' ],
);

section('values at the limits are accepted', {}, sub {
    for my $i (0 .. $#VALID) {
        get('/e/cart_add?' . marked($VALID[$i][1], $i), vid => $V,
            status => 200);
    }
    settle();
    my @ev = events();
    my %through = map { $_ => 1 } markers(@ev);
    ok($through{"c$_"}, "accepted: $VALID[$_][0]") for 0 .. $#VALID;
    is(stats()->{rejected}, undef, 'none rejected');
    is(stats()->{cart_adds}, scalar @VALID, 'cart_adds: one each');
    my %by = map { ($_->{order} // '') => $_ } @ev;
    is($by{c7}{name}, "Caf\x{e9} \x{2615} \x{1f370}", 'UTF-8 name in the stream');
    is($by{c8}{name}, '"a" <b> & c', 'quotes and <>& kept as data');
    is($by{c2}{qty}, 9999, 'qty 9999');
    is($by{c13}{qty}, 1, 'an empty qty is 1');
    is($by{c14}{price}, '15.01', 'four decimals: rounded half up to cents');
    is($by{c15}{url}, 'https://shop.example/p/1',
       'a protocol-relative url is https');
    my $cart = hash("rt:{$V}:cart");
    is($cart->{'s' x 64}, 1, 'the 64-byte sku in the cart');
    is($cart->{'AB-12_x.y/z'}, 1, 'the decoded sku in the cart');
    is(redis_cmd('EXISTS', 'rt:p:S'), 0, 'no product hash (not "catalog")');
});

section('a URI that is not UTF-8 still gets its event, with a "uri"', {
    config => $SERVER . q{
        location /u/ { retarget_event product sku=$arg_sku; return 200 "ok\n"; }
    },
}, sub {
    get('/u/caf%E9?sku=S1', vid => $V, status => 200);
    settle();
    is(stats()->{product_views}, 1, 'product_views 1');
    my ($e) = events();
    ok($e && defined $e->{uri} && $e->{uri} =~ m{^/u/caf},
       'stream: the entry has its uri (escaped or replaced, but there)')
        or diag(explain $e);
});

section('C1 control characters (U+0080..U+009F) are control characters', {}, sub {
    get('/e/cart_add?sku=S1&name=a%C2%85b', vid => $V, status => 200);
    get('/e/cart_add?sku=S%C2%9B1', vid => $V, status => 200);
    settle();
    my $s = stats();
    is($s->{rejected}, 1, 'rejected 1: CSI in a sku');
    is($s->{'rejected:bad_sku'}, 1, 'rejected:bad_sku 1');
    is($s->{'rejected:bad_name'}, 1, 'NEL in a name: the name dropped');
    is_deeply(hash("rt:{$V}:cart"), { S1 => 1 }, 'only S1 in the cart');
    is(cart_lines()->{S1}[3], '', '... without its name');
});

#--------------------------------------------------------------------------
# stream options
#--------------------------------------------------------------------------

section('retarget_stream_maxlen 0: no stream, the rest as usual', {
    http_config => $HTTP . 'retarget_stream_maxlen 0;',
    config => $SERVER . q{
        location /sp/ { retarget_stream_pageviews on; alias $TEST_NGINX_HTML_DIR/; }
    },
}, sub {
    get('/e/cart_add?sku=S1', vid => $V, status => 200);
    get('/e/purchase?order=O1&value=2', vid => vid('buyer'), status => 200);
    get('/e/purchase?order=O1&value=2', vid => vid('buyer'), status => 200);
    get('/sp/index.html', vid => $V, status => 200);
    settle();
    is(redis_cmd('EXISTS', 'rt:events'), 0, 'no stream');
    is_deeply(hash("rt:{$V}:cart"), { S1 => 1 }, 'cart written');
    my $s = stats();
    is($s->{cart_adds}, 1, 'cart_adds 1');
    is($s->{purchases}, 1, 'purchases 1');
    is($s->{purchases_duplicate}, 1, 'purchases_duplicate 1');
    is($s->{pageviews}, 1, 'pageviews 1');
});

section('retarget_stream_maxlen 0: non-UTF-8 values are still refused', {
    http_config => $HTTP . 'retarget_stream_maxlen 0;',
}, sub {
    get('/e/cart_add?sku=S1&name=caf%E9', vid => $V, status => 200);
    get('/e/cart_add?sku=S%FF', vid => $V, status => 200);
    settle();
    is(stats()->{rejected}, 1, 'rejected 1: the sku');
    is(stats()->{'rejected:bad_name'}, 1, 'the name dropped');
    is_deeply(hash("rt:{$V}:cart"), { S1 => 1 }, 'S1 in the cart');
    is(cart_lines()->{S1}[3], '', '... without its name');
});

section('retarget_stream_maxlen caps the stream (approximately)', {
    http_config => $HTTP . 'retarget_stream_maxlen 10;',
}, sub {
    get("/e/newsletter_signup?value=$_", vid => $V) for 1 .. 300;
    settle();
    is(stats()->{'events:newsletter_signup'}, 300, 'all 300 counted');
    my $len = redis_cmd('XLEN', 'rt:events');
    cmp_ok($len, '>=', 10, 'at least maxlen entries kept');
    cmp_ok($len, '<', 300, 'the stream was trimmed') or diag("XLEN $len");
    my @ev = events();
    is($ev[-1]{value}, '300', 'the newest entry is kept');
    my %ids = map { $_->{id} => 1 } @ev;
    is(scalar keys %ids, scalar @ev, 'event ids are unique');
});

#--------------------------------------------------------------------------
# retarget_redis options, retention
#--------------------------------------------------------------------------

# a command in another database: SELECT only affects the script
sub in_db {
    my ($db, @cmd) = @_;
    return redis_cmd('EVAL', q{
        redis.call('SELECT', ARGV[1])
        return redis.call(unpack(ARGV, 2))
    }, 0, $db, @cmd);
}

section('db=, prefix= and retarget_retention', {
    http_config => qq{
        retarget_secret $SECRET;
        retarget_redis 127.0.0.1:\$TEST_NGINX_REDIS_PORT db=3 prefix=shop1/;
        retarget_retention 2h;
    },
}, sub {
    get('/e/product?sku=S1&name=N', vid => $V, status => 200);
    get('/e/cart_add?sku=S1', vid => $V, status => 200);
    get('/e/purchase?order=O1&value=3', vid => vid('buyer'), status => 200);
    get('/e/purchase?order=O1&value=3', vid => vid('buyer'), status => 200);
    get('/index.html', vid => $V, status => 200);
    settle();

    is(redis_cmd('DBSIZE'), 0, 'nothing in db 0');
    my $keys = [ sort @{ in_db(3, 'KEYS', '*') || [] } ];
    my $day = today();
    is_deeply($keys,
              [ sort('shop1/carts', 'shop1/events', 'shop1/order:O1',
                     "shop1/stats:$day",
                     map({ "shop1/{$V}:$_" } qw(cart events meta viewed)),
                     map({ 'shop1/{' . vid('buyer') . "}:$_" } qw(events meta))) ],
              'db 3 holds every key, under the prefix');
    my %s = @{ in_db(3, 'HGETALL', "shop1/stats:$day") || [] };
    is($s{purchases}, 1, 'purchases 1');
    is($s{purchases_duplicate}, 1, 'purchases_duplicate 1 (order key in db 3)');
    is($s{revenue}, '3', 'revenue 3');
    is($s{pageviews}, 1, 'pageviews 1');
    for my $k (grep { /\{|order:/ } @$keys) {
        my $ttl = in_db(3, 'TTL', $k);
        ok($ttl >= 1 && $ttl <= 7200, "$k: TTL within retarget_retention 2h")
            or diag("TTL $ttl");
    }
});

#--------------------------------------------------------------------------
# several events in one location
#--------------------------------------------------------------------------

section('every retarget_event of a location is logged', {
    config => $SERVER . q{
        location = /multi {
            retarget_event cart_add sku=$arg_sku qty=$arg_qty;
            retarget_event checkout;
            retarget_event newsletter_signup if=$arg_news;
            return 200 "ok\n";
        }
    },
}, sub {
    get('/multi?sku=S1&qty=2', vid => $V, status => 200);
    get('/multi?sku=S2&news=1', vid => $V, status => 200);
    settle();
    my $s = stats();
    is($s->{cart_adds}, 2, 'cart_adds 2');
    is($s->{checkouts}, 2, 'checkouts 2');
    is($s->{'events:newsletter_signup'}, 1, 'events:newsletter_signup 1');
    is_deeply([ map { $_->{type} } events() ],
              [ qw(cart_add checkout cart_add checkout newsletter_signup) ],
              'stream: in configuration order');
    is_deeply(hash("rt:{$V}:cart"), { S1 => 2, S2 => 1 }, 'cart');
});

section('cart_clear and cart_add in one request: in the order they are logged', {
    config => $SERVER . q{
        location = /again {
            retarget_event cart_clear;
            retarget_event cart_add sku=$arg_sku qty=$arg_qty name=$arg_name;
            return 200 "ok\n";
        }
        location = /never {
            retarget_event cart_add sku=$arg_sku;
            retarget_event cart_clear;
            retarget_event cart_add sku=$arg_sku2;
            retarget_event cart_clear;
            return 200 "ok\n";
        }
    },
}, sub {
    get('/e/cart_add?sku=OLD&qty=4', vid => $V);
    get('/again?sku=NEW&qty=2&name=New', vid => $V, status => 200);
    settle(0.5);
    is_deeply(hash("rt:{$V}:cart"), { NEW => 2 }, 'cart: the new line only');
    my $lines = cart_lines();
    my $cleared = hash("rt:{$V}:meta")->{cart_cleared};
    cmp_ok($lines->{OLD}[0], '<=', $cleared, 'c:OLD is stale');
    cmp_ok($lines->{NEW}[0], '>', $cleared, 'c:NEW is newer than the clear');
    is($lines->{NEW}[1], 2, 'c:NEW: QTY 2');

    get('/never?sku=X&sku2=Y', vid => $V, status => 200);
    settle(0.5);
    $lines = cart_lines();
    $cleared = hash("rt:{$V}:meta")->{cart_cleared};
    cmp_ok($lines->{$_}[0], '<=', $cleared, "c:$_ is stale: added, then cleared")
        for qw(X Y);
    is(redis_cmd('EXISTS', "rt:{$V}:cart"), 0, 'the cart is empty');
});

#--------------------------------------------------------------------------
# Redis commands per page view and per event
#--------------------------------------------------------------------------

# MONITOR on a connection of our own, to attribute every command
sub monitor_start {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => $ENV{TEST_NGINX_REDIS_PORT}, Proto => 'tcp')
        or die "monitor: $!";
    print {$s} "MONITOR\r\n";
    my $ok = <$s>;
    die "monitor: $ok" unless $ok =~ /^\+OK/;
    return $s;
}

sub monitor_read {
    my ($s, $secs) = @_;
    my $sel = IO::Select->new($s);
    my $buf = '';
    my $end = time + $secs;
    while ((my $left = $end - time) > 0) {
        last unless $sel->can_read($left);
        last unless sysread($s, $buf, 65536, length $buf);
    }
    close $s;
    my @cmds;
    for my $line (split /\r\n/, $buf) {
        next unless $line =~ /^\+\S+ \[\d+ ([^\]]+)\] (.*)$/;
        # the commands of the stream entry's script run inside Redis: the
        # module sent the EVAL
        next if $1 eq 'lua';
        my @args = map { s/^"//; s/"$//; $_ } $2 =~ /("(?:[^"\\]|\\.)*")/g;
        next if !@args || $args[0] =~ /^(?:INFO|CONFIG|MONITOR|HGETALL|KEYS)$/i;
        # the worker's questions about the out-of-stock set: once a second
        # about the skus it knows, and once about a sku it meets first
        next if $args[0] =~ /^SMISMEMBER$/i && $args[1] eq 'rt:out_of_stock';
        # the catalogue's questions about the products the worker meets
        next if $args[0] =~ /^HMGET$/i && ($args[1] // '') =~ /^rt:p:/;
        # and the retention trims of the stream and the carts, once a second
        next if $args[0] =~ /^(?:XTRIM|ZREMRANGEBYSCORE)$/i;
        push @cmds, \@args;
    }
    return \@cmds;
}

sub commandstats {
    my $info = redis_cmd('INFO', 'commandstats');
    my %n;
    $n{$1} = $2 while $info =~ /^cmdstat_(\S+?):calls=(\d+)/mg;
    delete @n{qw(info config monitor smismember hmget xtrim
                 zremrangebyscore)};
    return \%n;
}

# what one request costs Redis: (visitor commands, counter flush commands)
sub measure {
    my ($label, $n, @reqs) = @_;
    redis_cmd('CONFIG', 'RESETSTAT');
    my $mon = monitor_start();
    get(@$_) for @reqs;
    my $cmds = monitor_read($mon, 1.6);
    my $stats = commandstats();
    my @flush = grep { ($_->[1] // '') =~ /^rt:stats:/ } @$cmds;
    my @work  = grep { ($_->[1] // '') !~ /^rt:stats:/ } @$cmds;
    diag(sprintf "%-28s %5.1f commands per request (+ %d counter-flush "
         . "commands in all); INFO commandstats: %s", $label, @work / $n,
         scalar @flush,
         join(' ', map { "$_=$stats->{$_}" } sort keys %$stats));
    note(join "\n", map { join ' ', @$_ } @$cmds);
    return (\@work, \@flush, $stats);
}

section('Redis commands per page view and per event', {}, sub {
    # prime: the visitor exists, the product too
    get('/e/cart_add?sku=S0&name=N&price=1', vid => $V);
    settle();

    my ($work, $flush, $st) = measure('returning page view', 20,
        map { ['/index.html', vid => $V] } 1 .. 20);
    is(scalar @$work, 0, 'a plain page view: no per-visitor write')
        or diag(explain $work);
    cmp_ok(scalar @$flush, '<=', 8,
           'page view counters: a few HINCRBY per flush, not per request');
    is($st->{hgetall}, 20, 'one read (HGETALL of the meta) per page view');
    my $total = 0;
    $total += $_ for values %$st;
    cmp_ok($total - ($st->{hgetall} // 0), '<=', 8,
           'INFO commandstats agrees: 20 page views, at most 8 commands '
           . 'besides the reads');

    ($work) = measure('cart_add', 1,
        ['/e/cart_add?sku=S1&qty=2&name=Mug&price=10.00&image=/m.png&url=/p/1',
         vid => $V]);
    ok(@$work >= 1, 'cart_add: some commands');
    cmp_ok(scalar @$work, '<=', 12, 'cart_add: at most 12 commands')
        or diag(explain $work);
    # the stream entry and its id in the visitor's index go together, so
    # that "forget" finds every entry: one script; the cart line of an
    # add without line= is the other (it keeps the line's id: it takes
    # the place of the line's HSET, the count is the same); no other
    is_deeply([ map { $_->[0] } grep { $_->[0] =~ /^(?:EVAL|EVALSHA|FCALL)/i }
                @$work ], ['EVAL', 'EVAL'],
              'two server-side scripts: the line, the stream entry');
    ok(!grep({ uc $_->[0] eq 'HSET' && ($_->[2] // '') =~ /^c:/ } @$work),
       'the line is not also written by HSET');

    ($work) = measure('product view', 1, ['/e/product?sku=S2', vid => $V]);
    cmp_ok(scalar @$work, '<=', 12, 'product: at most 12 commands');
    ($work) = measure('purchase with order', 1,
        ['/e/purchase?order=M1&value=5', vid => $V]);
    cmp_ok(scalar @$work, '<=', 12, 'purchase: at most 12 commands');
    ($work) = measure('new visitor cart_add', 1, ['/e/cart_add?sku=S1']);
    cmp_ok(scalar @$work, '<=', 2,
           'new visitor: the stream entry only (no product data given)');
});

done_testing();
