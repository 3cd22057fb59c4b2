# Issue 10, point 3: cart lines as the shop names them.  cart_add line=
# keeps the shop's line id inside the cart line ("...\tURL\tLINE");
# cart_remove line= and cart_update (line= or sku=, qty= or delta=) find
# the line in Redis, atomically (one EVAL), and an unknown line changes
# nothing (counted "rejected:unknown_line"); cart_sync replaces the
# visitor's whole cart from a JSON array (here from a request header:
# retarget_extract is the extract helper's).  The reminder, the page's
# variables and "me" see exactly the shop's cart.  Point 4: a purchase's
# value from a header or a map counts revenue once per order and per
# variant.
#
# Writes come after the response: each check polls, and "nothing
# changed" is checked behind a barrier (a later product view of the same
# visitor, whose write follows on the same link).
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis;
use Test::Retarget::Campaign;
use JSON::PP ();
use Time::HiRes qw(sleep);

use_redis();

my $V = rvid('lines');
my $META = "rt:{$V}:meta";
my $CART = "rt:{$V}:cart";

my $HTTP = campaign_http() . q{
    map $http_x_total $order_value { default $http_x_total; }
};

# /e/add: cart_add with every value; /e/qty, /e/delta: cart_update
my $SERVER = q{
    retarget on;
    retarget_variant A 1 builtin;
    location / { }
    location /retarget/ { retarget_control; }
    location = /e/add {
        retarget_event cart_add sku=$arg_sku qty=$arg_qty price=$arg_price
                       name=$arg_name image=$arg_image url=$arg_url
                       line=$arg_line;
        return 200 "ok\n";
    }
    location = /e/remove {
        retarget_event cart_remove sku=$arg_sku line=$arg_line;
        return 200 "ok\n";
    }
    location = /e/remove-line {
        retarget_event cart_remove line=$arg_line;
        return 200 "ok\n";
    }
    location = /e/qty {
        retarget_event cart_update sku=$arg_sku line=$arg_line qty=$arg_qty;
        return 200 "ok\n";
    }
    location = /e/delta {
        retarget_event cart_update line=$arg_line sku=$arg_sku
                       delta=$arg_delta;
        return 200 "ok\n";
    }
    location = /e/view {
        retarget_event product sku=$arg_sku;
        return 200 "ok\n";
    }
    location = /e/sync {
        retarget_event cart_sync items=$http_x_cart;
        return 200 "ok\n";
    }
    # the WooCommerce Store API's items: prices in minor units
    location = /e/sync-woo {
        retarget_event cart_sync items=$http_x_cart sku=sku qty=quantity
                       name=name price=prices.price
                       minor=prices.currency_minor_unit
                       image=images.0.src url=permalink line=key;
        return 200 "ok\n";
    }
    # Shopify's cart.js items: prices in cents
    location = /e/sync-shopify {
        retarget_event cart_sync items=$http_x_cart name=product_title
                       minor=2;
        return 200 "ok\n";
    }
    # Magento 2 customer-data cart.items: numbers as values, item_id
    location = /e/sync-magento {
        retarget_event cart_sync items=$http_x_cart sku=product_sku qty=qty
                       name=product_name price=product_price_value
                       url=product_url image=product_image.src
                       line=item_id;
        return 200 "ok\n";
    }
    location = /buy {
        retarget_event purchase order=$http_x_order value=$order_value;
        return 200 "ok\n";
    }
};

my $Barrier = 0;

sub req {
    my ($uri, @h) = @_;
    my $r = http_req(uri => $uri,
                     headers => [ 'Cookie: rt_vid=' . signed_cookie($V, $SECRET),
                                  @h ]);
    is($r->{status}, 200, "GET $uri: 200") or diag($r->{error} // $r->{raw});
    return $r;
}

# the visitor's writes so far are in Redis
sub barrier {
    my $sku = 'BARRIER' . ++$Barrier;
    req("/e/view?sku=$sku");
    ok(eventually(sub {
        (redis_cmd('LINDEX', "rt:{$V}:viewed", 0) // '') eq $sku }),
       "barrier $sku passed");
}

# sku => [MS, QTY, PRICE, NAME, IMAGE, URL, (LINE)]
sub lines {
    my $m = hash($META);
    return { map { (substr($_, 2) => [ split /\t/, $m->{$_}, -1 ]) }
             grep { /^c:/ } keys %$m };
}

# sku => qty of the cart hash, and of the lines
sub cart { hash($CART) }
sub line_qty { my $l = lines(); return { map { $_ => $l->{$_}[1] } keys %$l } }

sub flat { my ($h) = @_; join(',', map { "$_=$h->{$_}" } sort keys %$h) }

sub cart_is {
    my ($want, $name) = @_;
    ok(eventually(sub { flat(cart()) eq flat($want)
                        && flat(line_qty()) eq flat($want) }),
       "$name: the cart hash") or diag(explain(cart()));
    is_deeply(line_qty(), $want, "$name: the lines in the meta");
}

# the reminder: the cart idle for 2h, then a page of a new visit (the
# frequency cap counts visits: the visit of the last reminder is
# forgotten)
sub reminder {
    barrier();
    redis_cmd('HSET', $META, 'cart_updated', time - 7200);
    redis_cmd('HDEL', $META, 'last_reminder', 'reminders', 'seen',
              'visit_last', 'visit_pages');
    return page($V);
}

sub section_c {
    my ($name, $code) = @_;
    section($name, { http_config => $HTTP, config => $SERVER },
            { 'page.html' => $Test::Retarget::Campaign::PAGE }, $code);
}

sub stream_of {
    my ($type) = @_;
    my $l = redis_cmd('XRANGE', 'rt:events', '-', '+');
    return grep { $_->{type} eq $type }
           map { my %f = @{ $_->[1] }; JSON::PP->new->decode($f{e}) }
           ref $l ? @$l : ();
}

sub first_seen { redis_cmd('HSET', $META, 'first_seen', time - 86400) }

#--------------------------------------------------------------------------
# line ids, cart_remove line=, cart_update
#--------------------------------------------------------------------------

section_c('cart_add line= keeps the shop\'s line id in the cart line', sub {
    first_seen();
    req('/e/add?sku=MUG&qty=2&price=12.50&name=Big%20Mug'
        . '&image=/img/mug.png&url=/p/mug&line=li-1');
    req('/e/add?sku=CUP&qty=1&price=5&name=Cup&url=/p/cup');
    cart_is({ MUG => 2, CUP => 1 }, 'two adds');
    my $l = lines();
    is(scalar @{ $l->{MUG} }, 7, 'a line with an id has 7 parts');
    is_deeply([ @{ $l->{MUG} }[1 .. 6] ],
              [ 2, '12.50', 'Big Mug', '/img/mug.png', '/p/mug', 'li-1' ],
              'MS QTY PRICE NAME IMAGE URL LINE, as stored');
    like($l->{MUG}[0], qr/^\d{13}$/, 'MS in milliseconds');
    is(scalar @{ $l->{CUP} }, 6, 'a line without an id: the 6 parts of before');

    # the same sku again: the quantity grows, the id stays the shop's
    req('/e/add?sku=MUG&qty=1&price=12.50&name=Big%20Mug&line=li-1');
    cart_is({ MUG => 3, CUP => 1 }, 'MUG added again');
    is(lines()->{MUG}[6], 'li-1', 'the line id is kept');

    # bounds: like a sku, at most 64 printable bytes without spaces; an
    # id that fails drops the id, not the add
    req('/e/add?sku=BAD1&line=' . ('x' x 65));
    req('/e/add?sku=BAD2&line=a%20b');
    req('/e/add?sku=OK64&line=' . ('y' x 64));
    cart_is({ MUG => 3, CUP => 1, OK64 => 1, BAD1 => 1, BAD2 => 1 },
            'line ids checked');
    settle();
    is(scalar @{ lines()->{BAD1} }, 6, 'a 65-byte id: the line without it');
    is(scalar @{ lines()->{BAD2} }, 6, 'an id with a space: without it');
    is(lines()->{OK64}[6], 'y' x 64, 'a 64-byte id kept');
    is(stats()->{'rejected:bad_line'}, 2, 'both counted as bad_line');
    ok(!stats()->{rejected}, 'no event rejected');

    # "me" shows the line id
    my $me = req('/retarget/me');
    my $doc = JSON::PP->new->decode($me->{body});
    is($doc->{stored}{cart_lines}{MUG}{line}, 'li-1', '"me": the line id');
    is($doc->{stored}{cart_lines}{MUG}{qty}, 3, '"me": the quantity');
    ok(!exists $doc->{stored}{cart_lines}{CUP}{line}, '"me": no id, no line');
});

# WooCommerce's classic cart adds by product id (no key) and removes by
# the line's key, known from a cart_sync or an earlier add
section_c('a cart_add without line= keeps the line\'s id', sub {
    first_seen();
    req('/e/add?sku=Q&qty=1&price=4&name=Q&line=q1');
    cart_is({ Q => 1 }, 'an add with line=q1');
    req('/e/add?sku=Q&qty=1&price=4&name=Q');
    cart_is({ Q => 2 }, 'the same sku, no line=');
    is_deeply([ @{ lines()->{Q} }[1 .. 6] ], [ 2, '4', 'Q', '', '', 'q1' ],
              'the line keeps q1 (7 parts)');
    req('/e/remove-line?line=q1');
    cart_is({}, 'removed by q1');

    # the key of a cart_sync, then an add by product id, then by key
    req('/e/sync', 'X-Cart: [{"sku":"W","quantity":2,"key":"k-w"}]');
    cart_is({ W => 2 }, 'synced with key k-w');
    req('/e/add?sku=W&qty=1&name=W&price=3');
    cart_is({ W => 3 }, 'an add without line=');
    is(lines()->{W}[6], 'k-w', 'the sync\'s key is kept');
    req('/e/delta?line=k-w&delta=-1');
    cart_is({ W => 2 }, 'updated by the key');

    # a line older than the last clear is no line: its id goes with it
    req('/e/add?sku=S&qty=1&name=S&line=s1');
    cart_is({ W => 2, S => 1 }, 'S with s1');
    redis_cmd('HSET', $META, 'cart_cleared', lines()->{S}[0]);
    redis_cmd('HDEL', $CART, 'S');
    sleep 0.01;
    req('/e/add?sku=S&qty=1&name=S');
    ok(eventually(sub { (lines()->{S}[0] // 0) > redis_cmd('HGET', $META,
                                                           'cart_cleared') }),
       'S written again');
    is(scalar @{ lines()->{S} }, 6, 'a stale line\'s id is not kept');

    # two shop lines of one sku are one line here, with the newest id
    req('/e/add?sku=W&qty=1&line=k-w2');
    cart_is({ W => 3, S => 1 }, 'W with another id');
    is(lines()->{W}[6], 'k-w2', 'the newest id');
    req('/e/remove-line?line=k-w');
    barrier();
    is_deeply(cart(), { W => 3, S => 1 }, 'the older id is unknown');
    req('/e/remove-line?line=k-w2');
    cart_is({ S => 1 }, 'the newest id removes the line');
    settle();
    is(stats()->{'rejected:unknown_line'}, 1, 'one unknown line');
});

section_c('cart_remove line= and cart_update by line and by sku', sub {
    first_seen();
    req('/e/add?sku=MUG&qty=2&price=12.50&name=Mug&line=L1');
    req('/e/add?sku=CUP&qty=1&price=5.00&name=Cup&line=L2');
    req('/e/add?sku=HAT&qty=1&price=20&name=Hat&line=L3');
    cart_is({ MUG => 2, CUP => 1, HAT => 1 }, 'three adds');
    my $ms = lines()->{MUG}[0];
    barrier();
    redis_cmd('HSET', $META, 'cart_updated', 1000);
    redis_cmd('ZADD', 'rt:carts', 1000, $V);

    req('/e/remove-line?line=L2');
    cart_is({ MUG => 2, HAT => 1 }, 'CUP removed by its line id');
    ok(redis_cmd('HGET', $META, 'cart_updated') > 1000,
       'cart_updated moved');
    ok(redis_cmd('ZSCORE', 'rt:carts', $V) > 1000,
       'the abandoned-cart queue moved');

    req('/e/qty?line=L1&qty=4');
    cart_is({ MUG => 4, HAT => 1 }, 'qty=4 by line');
    is(lines()->{MUG}[0], $ms, 'the line keeps its time');
    is_deeply([ @{ lines()->{MUG} }[2 .. 6] ], [ '12.50', 'Mug', '', '', 'L1' ],
              'and its values');

    req('/e/delta?line=L1&delta=-1');
    cart_is({ MUG => 3, HAT => 1 }, 'delta=-1 by line');
    req('/e/delta?sku=HAT&delta=%2B5');
    cart_is({ MUG => 3, HAT => 6 }, 'delta=+5 by sku');
    req('/e/delta?sku=HAT&delta=2');
    cart_is({ MUG => 3, HAT => 8 }, 'delta=2 (no sign) by sku');
    req('/e/qty?sku=MUG&qty=2');
    cart_is({ MUG => 2, HAT => 8 }, 'qty=2 by sku');

    # clamped: 0..QTY_MAX (999)
    req('/e/qty?line=L3&qty=5000');
    cart_is({ MUG => 2, HAT => 999 }, 'qty=5000: 999');
    req('/e/delta?line=L3&delta=9999');
    cart_is({ MUG => 2, HAT => 999 }, 'delta beyond: still 999');
    req('/e/delta?line=L1&delta=-7');
    cart_is({ HAT => 999 }, 'a delta below 0 removes the line');
    req('/e/qty?line=L3&qty=0');
    cart_is({}, 'qty=0 removes the line');
    ok(!redis_cmd('EXISTS', $CART), 'the cart hash is gone with its lines');

    settle();
    my $s = stats();
    is($s->{cart_updates}, 9, 'cart_updates counted');
    is($s->{cart_removes}, 1, 'cart_removes counted');
    is($s->{rejected} // 0, 0, 'nothing rejected');

    my @u = stream_of('cart_update');
    is(scalar @u, 9, 'nine cart_update entries on the stream');
    is($u[0]{line}, 'L1', 'with the line id');
    is($u[0]{qty}, 4, 'and the quantity');
    is($u[1]{delta}, '-1', 'or the delta');
});

section_c('an unknown line changes nothing', sub {
    first_seen();
    req('/e/add?sku=MUG&qty=2&price=12.50&name=Mug&line=L1');
    cart_is({ MUG => 2 }, 'one add');
    barrier();
    my $before = hash($META);
    my $score = redis_cmd('ZSCORE', 'rt:carts', $V);
    mark_error_log();
    req('/e/qty?line=NO%22P%C3%89&qty=5');
    req('/e/delta?line=NOPE&delta=1');
    req('/e/remove-line?line=NOPE');
    req('/e/qty?sku=NOSUCH&qty=5');
    barrier();
    my $after = hash($META);
    delete @$_{qw(last_seen)} for $before, $after;
    is_deeply({ map { $_ => $after->{$_} } grep { !/^v:/ } keys %$after },
              { map { $_ => $before->{$_} } grep { !/^v:/ } keys %$before },
              'the meta is as it was (but the barrier\'s views)');
    is_deeply(cart(), { MUG => 2 }, 'the cart is as it was');
    is(redis_cmd('ZSCORE', 'rt:carts', $V), $score, 'the queue is as it was');
    settle();
    my $s = stats();
    is($s->{'rejected:unknown_line'}, 4, 'rejected:unknown_line counted');
    is($s->{rejected}, 4, 'and rejected');
    is($s->{cart_updates} // 0, 0, 'no cart_update counted');
    is(scalar(stream_of('cart_update')), 0, 'nor streamed');
    # logged like the other rejections (point 7): at notice, once a
    # minute per reason, with the location and the value escaped
    my @log = grep { /rejected \(unknown_line\)/ }
              split /\n/, Test::Retarget::error_log_since_mark();
    is(scalar @log, 1, 'four unknown lines: one notice') or diag(@log);
    like($log[0] // '', qr/\[notice\].*event "cart_update" at "\/e\/qty" /,
         'at notice, the event and its location');
    like($log[0] // '', qr/: line="NO\\x22P\\xc3\\x89"/,
         'the line id, escaped');
    unlike(Test::Retarget::error_log_since_mark(), qr/\[info\].*no cart line/,
           'no info line per event any more');

    # a line older than the last clear is no line
    req('/e/add?sku=OLD&qty=1&name=Old&line=L9');
    cart_is({ MUG => 2, OLD => 1 }, 'another add');
    redis_cmd('HSET', $META, 'cart_cleared', time * 1000 + 60000);
    req('/e/qty?line=L9&qty=3');
    barrier();
    is(lines()->{OLD}[1], 1, 'a stale line is not updated');
});

section_c('the reminder lists exactly the shop\'s cart', sub {
    first_seen();
    req('/e/add?sku=MUG&qty=2&price=12.50&name=Big%20Mug&url=/p/mug&line=L1');
    req('/e/add?sku=CUP&qty=1&price=5&name=Cup&url=/p/cup&line=L2');
    req('/e/add?sku=PLATE&qty=1&price=7.25&name=Plate&url=/p/plate&line=L3');
    cart_is({ MUG => 2, CUP => 1, PLATE => 1 }, 'three adds');
    my $r = reminder();
    is($r->{decision}, 'shown', 'shown');
    is($r->{count}, 4, '4 items');
    is($r->{total}, '37.25', 'total 37.25');

    req('/e/remove-line?line=L2');
    req('/e/qty?line=L1&qty=3');
    cart_is({ MUG => 3, PLATE => 1 }, 'removed and updated by line');
    $r = reminder();
    is($r->{decision}, 'shown', 'shown again');
    is($r->{count}, 4, '$retarget_cart_count 4');
    is($r->{total}, '44.75', '$retarget_cart_total 44.75');
    my $b = banner_of($r->{body}) // '';
    is_deeply([ sort @{ banner_names($b) } ], [ 'Big Mug', 'Plate' ],
              'the banner lists Big Mug and Plate');
    like($b, qr{>Big Mug</a><small>3 &times; 12.50</small></div><b>37.50</b>},
         'Big Mug: 3 x 12.50 = 37.50');
    like($b, qr{>Plate</a><small>1 &times; 7.25</small></div><b>7.25</b>},
         'Plate: 1 x 7.25');
    like($b, qr{Total <b>44\.75</b>}, 'total 44.75');
    unlike($b, qr{Cup}, 'no Cup');
});

#--------------------------------------------------------------------------
# cart_sync
#--------------------------------------------------------------------------

sub sync {
    my ($uri, $items) = @_;
    my $json = ref $items ? JSON::PP->new->canonical->encode($items) : $items;
    return req($uri, "X-Cart: $json");
}

section_c('cart_sync replaces the cart', sub {
    first_seen();
    req('/e/add?sku=OLD&qty=3&price=1&name=Old&line=L0');
    cart_is({ OLD => 3 }, 'an old line');

    sync('/e/sync', [ { sku => 'A', quantity => 2, name => 'Alpha',
                        price => '10.00', key => 'k-a', url => '/p/a' },
                      { sku => 'B', quantity => 1, name => 'Beta',
                        price => 2.5, image => '/img/b.png' },
                      { name => 'no sku' },
                      { sku => '', quantity => 1 },
                      { sku => 'ZERO', quantity => 0 },
                      { sku => 'A', quantity => 1 },
                      { sku => 'C', quantity => 1500, name => "Bad\x01Name",
                        price => 'free', url => 'javascript:alert(1)' } ]);
    cart_is({ A => 3, B => 1, C => 999 },
            'the shop\'s lines: repeated skus added, quantities clamped, '
            . 'items without a sku or a quantity left out');
    my $l = lines();
    is_deeply([ @{ $l->{A} }[1 .. 6] ], [ 3, '10.00', 'Alpha', '', '/p/a', 'k-a' ],
              'A as stored, with its line id (key)');
    is_deeply([ @{ $l->{B} }[1 .. 5] ], [ 1, '2.5', 'Beta', '/img/b.png', '' ],
              'B: a JSON number as written');
    is_deeply([ @{ $l->{C} }[1 .. 5] ], [ 999, '', '', '', '' ],
              'C: invalid values left out, not the line');
    ok($l->{A}[0] > $l->{B}[0] && $l->{B}[0] > $l->{C}[0],
       'the shop\'s order, the first newest');
    ok(redis_cmd('ZSCORE', 'rt:carts', $V), 'in the abandoned-cart queue');
    ok(redis_cmd('TTL', $CART) > 0, 'the cart has the retention TTL');

    my $r = reminder();
    is($r->{count}, 1003, 'the reminder counts the new cart');
    is($r->{total}, '32.50', 'its total (C has no price)');
    my @e = stream_of('cart_sync');
    is($e[0]{lines}, 3, 'the stream entry says 3 lines');
    ok(!exists $e[0]{items}, 'and not the JSON');

    # the lines are as cart_add's: removed and updated by line id
    req('/e/remove-line?line=k-a');
    cart_is({ B => 1, C => 999 }, 'A removed by its key');

    # a sync with fewer lines removes the others
    sync('/e/sync', [ { sku => 'B', quantity => 4 } ]);
    cart_is({ B => 4 }, 'lines not in the array removed');

    # not a JSON array: rejected, nothing changes
    sync('/e/sync', '{"sku":"X"}');
    sync('/e/sync', '[{"sku":"X"');
    req('/e/sync');
    barrier();
    is_deeply(cart(), { B => 4 }, 'not an array, not JSON, no header: '
              . 'the cart is as it was');
    settle();
    is(stats()->{rejected}, 3, 'three rejected');
    is(stats()->{cart_syncs}, 2, 'two cart_syncs');

    # an empty array empties the cart, as cart_clear does
    sync('/e/sync', []);
    ok(eventually(sub { !redis_cmd('EXISTS', $CART) }), 'the cart hash is gone');
    is_deeply(lines(), {}, 'no line in the meta');
    ok(!defined redis_cmd('ZSCORE', 'rt:carts', $V), 'out of the queue');
    like(redis_cmd('HGET', $META, 'cart_cleared'), qr/^\d{13}$/,
         'cart_cleared stamped');
    $r = reminder();
    is($r->{decision}, 'no_cart', 'no reminder');
});

section_c('cart_sync: 60 items, 50 kept', sub {
    first_seen();
    sync('/e/sync', [ map { { sku => "S$_", quantity => 1, price => '1' } }
                      1 .. 60 ]);
    ok(eventually(sub { (redis_cmd('HLEN', $CART) // 0) == 50 }),
       'the cart hash holds 50 lines');
    my $l = lines();
    is(scalar keys %$l, 50, '50 lines in the meta');
    ok(exists $l->{S1} && exists $l->{S50} && !exists $l->{S51},
       'the first 50');
    my $r = reminder();
    is($r->{count}, 50, 'the reminder counts 50');
    is($r->{total}, '50.00', 'total 50.00');
    settle();
    is(stats()->{'rejected:sync_item'}, 10, 'the 10 left out are counted');
});

section_c('cart_sync: WooCommerce Store API and Shopify cart.js items', sub {
    first_seen();
    sync('/e/sync-woo', [
        { id => 1, key => 'c4ca4238a0b9', sku => 'W-1', quantity => 2,
          name => 'Salt + Pepper Bowl', permalink => 'https://shop.example/p/bowl',
          images => [ { src => 'https://shop.example/img/bowl.png' } ],
          prices => { price => '1500', currency_minor_unit => 2 } },
        { id => 2, key => 'c81e728d9d4c', sku => 'W-2', quantity => 1,
          name => 'Yen Cup', prices => { price => '1200',
                                          currency_minor_unit => 0 } },
        { id => 3, key => 'eccbc87e4b5c', sku => 'W-3', quantity => 1,
          name => 'Mills', prices => { price => '12345',
                                       currency_minor_unit => 3 } },
        { id => 4, key => 'a87ff679a2f3', sku => 'W-4', quantity => 1,
          name => 'No unit', prices => { price => '999' } } ]);
    cart_is({ 'W-1' => 2, 'W-2' => 1, 'W-3' => 1, 'W-4' => 1 }, 'Woo items');
    my $m = hash($META);
    my ($ms, @rest) = split /\t/, $m->{'c:W-1'}, -1;
    like($ms, qr/^\d{13}$/, 'W-1: MS');
    is(join('|', @rest),
       '2|15.00|Salt + Pepper Bowl|https://shop.example/img/bowl.png|'
       . 'https://shop.example/p/bowl|c4ca4238a0b9',
       'W-1 as stored: 1500 in minor unit 2 is 15.00, "+" kept');
    is(lines()->{'W-2'}[2], '1200.00', 'minor unit 0: 1200.00');
    is(lines()->{'W-3'}[2], '12.35', 'minor unit 3: 12.345 rounded to 12.35');
    is(lines()->{'W-4'}[2], '', 'no minor unit in the item: no price');
    my $r = reminder();
    is($r->{total}, '1242.35', 'the reminder\'s total');

    req('/e/qty?line=c81e728d9d4c&qty=3');
    cart_is({ 'W-1' => 2, 'W-2' => 3, 'W-3' => 1, 'W-4' => 1 },
            'Woo line key: quantity changed');

    sync('/e/sync-shopify', [
        { id => 4242, key => '4242:9f8e', sku => 'SH-1', quantity => 1,
          product_title => 'Tee', price => 2500, url => '/products/tee',
          image => 'https://cdn.shopify.com/tee.png' } ]);
    cart_is({ 'SH-1' => 1 }, 'Shopify items replace the cart');
    is_deeply([ @{ lines()->{'SH-1'} }[1 .. 6] ],
              [ 1, '25.00', 'Tee', 'https://cdn.shopify.com/tee.png',
                '/products/tee', '4242:9f8e' ],
              'SH-1 as stored: cents, default paths (url image key)');
});

section_c('cart_sync: Magento 2 customer-data items, then by item_id', sub {
    first_seen();
    sync('/e/sync-magento', [
        { item_id => 41, product_sku => 'MJ01-XS-Black', qty => 2,
          product_name => 'Beaumont Summit Kit', product_price_value => 42,
          product_url => 'https://magento.example/mj01.html',
          product_image => { src => 'https://magento.example/mj01.jpg' } },
        { item_id => 42, product_sku => 'WS12-M-Orange', qty => '1',
          product_name => 'Radiant Tee', product_price_value => 22.5,
          product_url => 'https://magento.example/ws12.html' } ]);
    cart_is({ 'MJ01-XS-Black' => 2, 'WS12-M-Orange' => 1 }, 'Magento items');
    is_deeply([ @{ lines()->{'MJ01-XS-Black'} }[1 .. 6] ],
              [ 2, '42', 'Beaumont Summit Kit',
                'https://magento.example/mj01.jpg',
                'https://magento.example/mj01.html', '41' ],
              'an integer price and an integer item_id, as written');
    is(lines()->{'WS12-M-Orange'}[2], '22.5', 'a real price: 22.5');
    req('/e/remove-line?line=41');
    req('/e/qty?line=42&qty=2');
    cart_is({ 'WS12-M-Orange' => 2 }, 'removed and updated by item_id');
    my $r = reminder();
    is($r->{total}, '45.00', 'the reminder: 2 x 22.50');
});

#--------------------------------------------------------------------------
# old lines, a page's read
#--------------------------------------------------------------------------

section_c('old 6-field lines still decode; the page reads 7-field lines', sub {
    my $ms = (time - 7200) * 1000;
    redis_cmd('HSET', $META, 'first_seen', time - 86400,
              'cart_updated', time - 7200,
              'c:OLD', "$ms\t2\t3.00\tOld Line\t\t/p/old",
              'c:NEW', "$ms\t1\t4.00\tNew Line\t\t/p/new\tL-new",
              'c:BAD', "$ms\t1\t4.00\tBad\t\t/p/bad\tL\textra");
    redis_cmd('HSET', $CART, 'OLD', 2, 'NEW', 1);
    my $r = page($V);
    is($r->{decision}, 'shown', 'shown');
    is($r->{count}, 3, 'count 3: the 8-part line is not a line');
    is($r->{total}, '10.00', 'total 10.00');
    ok(eventually(sub { !defined redis_cmd('HGET', $META, 'c:BAD') }),
       'the 8-part line deleted by the page\'s writes');

    # an old line is updated by its sku, and keeps its 6 parts
    req('/e/qty?sku=OLD&qty=5');
    cart_is({ OLD => 5, NEW => 1 }, 'OLD updated by sku');
    is(scalar @{ lines()->{OLD} }, 6, 'still 6 parts');
    req('/e/delta?line=L-new&delta=1');
    cart_is({ OLD => 5, NEW => 2 }, 'NEW updated by line');

    my $doc = JSON::PP->new->decode(req('/retarget/me')->{body});
    is($doc->{stored}{cart_lines}{OLD}{qty}, 5, '"me": the old line');
    is($doc->{stored}{cart_lines}{NEW}{line}, 'L-new', '"me": the new one');
});

#--------------------------------------------------------------------------
# point 4: purchases with their value, from a header and a map
#--------------------------------------------------------------------------

section_c('purchase value from a map: once per order, per variant', sub {
    redis_cmd('HSET', $META, 'first_seen', time - 86400,
              'clicked', (time - 3600) . ' A', 'seen', (time - 3600) . ' A');
    req('/buy', 'X-Order: O-1', 'X-Total: 44.75');
    req('/buy', 'X-Order: O-1', 'X-Total: 44.75');
    req('/buy', 'X-Order: O-2', 'X-Total: 5');
    req('/buy', 'X-Order: O-3', 'X-Total: not-a-price');
    settle();
    my $s = stats();
    is($s->{purchases}, 3, 'three purchases: the one without a usable value too');
    is($s->{purchases_duplicate}, 1, 'one duplicate');
    is($s->{revenue}, '49.75', 'revenue 49.75, the duplicate not counted');
    is($s->{'conversions:A'}, 3, 'conversions of variant A');
    is($s->{'revenue:A'}, '49.75', 'revenue of variant A');
    is($s->{'rejected:bad_value'}, 1, 'a value that is not a price: bad_value');
    ok(!$s->{rejected}, 'no purchase rejected');
});

#--------------------------------------------------------------------------
# configuration errors (the blocks below)
#--------------------------------------------------------------------------

run_tests();

__DATA__

=== TEST 1: cart_update needs qty= or delta=, not both
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
--- config
retarget on;
location / { retarget_event cart_update line=$arg_line qty=1 delta=1; }
--- must_die
--- error_log eval
qr/\[emerg\] "retarget_event cart_update" requires "qty=" or "delta=" in \S+nginx\.conf:\d+/

=== TEST 2: cart_remove needs sku= or line=
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
--- config
retarget on;
location / { retarget_event cart_remove qty=1; }
--- must_die
--- error_log eval
qr/\[emerg\] "retarget_event cart_remove" requires "sku=" or "line=" in \S+nginx\.conf:\d+/

=== TEST 3: cart_sync needs items=, and items= is only for it
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
--- config
retarget on;
location / { retarget_event cart_add sku=a items=$http_x_cart; }
--- must_die
--- error_log eval
qr/\[emerg\] "cart_sync" requires "items=", and "items=" is only for it, in "retarget_event"/

=== TEST 4: delta= is only for cart_update
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
--- config
retarget on;
location / { retarget_event cart_remove line=$arg_l delta=1; }
--- must_die
--- error_log eval
qr/\[emerg\] "delta=" is only for "cart_update" in "retarget_event"/
