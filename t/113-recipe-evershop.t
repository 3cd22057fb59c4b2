# conf-examples/evershop.conf in front of a fake EverShop
# (t/fake/evershop.py): a visitor views three products, adds them (one
# twice as many, one again: EverShop raises its line), removes one line by
# its id (DELETE, no body), raises another (PATCH), leaves; the reminder
# on a later page lists exactly the shop's cart; the visitor follows the
# banner, checks out and places the order, whose grand total is the
# revenue of the banner shown.
#
# Everything is read from what EverShop sends and answers: the product
# pages' eContext, the added line in the add call's answer (kept under
# EverShop's line id), the line id in the DELETE's and PATCH's URI, the
# new quantity in the PATCH's answer, the order in the checkout call's
# answer.  The clock is moved as t/080 does, through the stored timestamps.
use strict;
use warnings;
use lib 't/lib';
use JSON::PP qw(decode_json encode_json);
use Test::Retarget;
use Test::Retarget::Redis;
use Test::Retarget::Campaign qw(rvid);
use Test::Retarget::ShopRecipe;

use_redis();

my $SHOP = start_shop('evershop');
my $CONF = { http_config => recipe_http('evershop', $SHOP), config => '' };

my %P = (
    shoes  => { sku => 'NJC90842-Blue-S', name => 'Lite racer adapt 3.0 shoes',
                price => '82.30', uri => '/product/lite-racer-adapt-3.0-shoes' },
    hoodie => { sku => 'NJC20117-Black-M', name => 'Classic + "Retro" hoodie',
                price => '49.99', uri => '/product/classic-retro-hoodie' },
    runner => { sku => 'NJC64012-Red-L', name => 'Trail runner 100%',
                price => '15.00', uri => '/product/trail-runner' },
);

sub api {
    my ($v, $method, $uri, $body) = @_;
    my $r = visit($v, $method, $uri,
                  defined $body ? (body => encode_json($body)) : ());
    is($r->{status}, 200, "$method $uri: 200") or diag($r->{body});
    return eval { decode_json($r->{body}) } // {};
}

sub shop_cart {
    my ($v) = @_;
    my $j = decode_json(shop_get($v, '/_fake/cart')->{body});
    my (%c, $t);
    for my $i (@{ $j->{items} }) {
        $c{ $i->{product_sku} } = { qty => $i->{qty},
                                    price => sprintf('%.2f', $i->{final_price}),
                                    name => $i->{product_name},
                                    line => $i->{uuid} };
        $t += $i->{total};
    }
    return (\%c, sprintf('%.2f', $t));
}

section('a visitor through EverShop: views, cart, reminder, purchase', $CONF, {}, sub {
    my $vid = rvid('evershop-buyer');
    my $v = new_visitor($vid);

    for my $p (@P{qw(shoes hoodie runner)}) {
        my $r = visit($v, 'GET', $p->{uri}, page => 1);
        is($r->{status}, 200, "GET $p->{uri}");
        like($r->{body}, qr{var eContext = }, 'a product page');
    }
    ok(eventually(sub { defined view_line_of($vid, $P{runner}{sku}) }, 5),
       'the views are stored');
    for my $p (@P{qw(shoes hoodie runner)}) {
        my $l = view_line_of($vid, $p->{sku});
        is($l && $l->{name}, $p->{name}, "view $p->{sku}: name");
        is(amount($l && $l->{price}), $p->{price}, "view $p->{sku}: price");
    }

    # the first item goes to "mine", the next ones to the cart's id
    my $a = api($v, 'POST', '/api/cart/mine/items',
                { sku => $P{shoes}{sku}, qty => 1 });
    my $cart = $a->{data}{cartId};
    like($cart // '', qr/^[0-9a-f]{32}$/, 'a cart id');
    my $shoes_line = $a->{data}{item}{uuid};
    my $b = api($v, 'POST', "/api/cart/$cart/items",
                { sku => $P{hoodie}{sku}, qty => '2' });
    my $hoodie_line = $b->{data}{item}{uuid};
    api($v, 'POST', "/api/cart/$cart/items", { sku => $P{runner}{sku}, qty => 1 });
    # the same sku again: EverShop raises its line (the same uuid)
    my $again = api($v, 'POST', "/api/cart/$cart/items",
                    { sku => $P{runner}{sku}, qty => 1 });
    is($again->{data}{item}{qty}, 2, 'the shop: 2 runners, one line');
    my $mine = wait_cart($vid, map { $_->{sku} } values %P);
    is($mine->{ $P{shoes}{sku} }{line}, $shoes_line,
       "the module keeps EverShop's line id");

    # an unknown sku: 400, nothing added
    my $r = visit($v, 'POST', "/api/cart/$cart/items",
                  body => encode_json({ sku => 'NOPE', qty => 1 }));
    is($r->{status}, 400, 'an unknown sku: 400');

    # remove a line and raise another, by their ids alone
    $r = visit($v, 'DELETE', "/api/cart/$cart/items/$shoes_line");
    is($r->{status}, 200, 'DELETE the shoes line');
    my $p = api($v, 'PATCH', "/api/cart/$cart/items/$hoodie_line",
                { action => 'increase', qty => 1 });
    is($p->{data}{item}{qty}, 3, 'the shop: 3 hoodies');

    my ($shop, $total) = shop_cart($v);
    is_deeply([ sort keys %$shop ], [ sort map { $P{$_}{sku} } qw(hoodie runner) ],
              'the shop: hoodie and runner');
    eventually(sub { $mine = cart_lines($vid);
                     join(' ', sort keys %$mine) eq join(' ', sort keys %$shop)
                     && ($mine->{ $P{hoodie}{sku} }{qty} // 0) == 3 }, 5);
    for my $sku (sort keys %$shop) {
        is(amount($mine->{$sku}{price}), $shop->{$sku}{price},
           "module's $sku: price");
        is($mine->{$sku}{$_}, $shop->{$sku}{$_}, "module's $sku: $_")
            for qw(qty name line);
    }

    move_cart_back($vid);
    $r = visit($v, 'GET', '/', page => 1);
    is($r->{status}, 200, 'GET / (two hours later)');
    banner_matches($r->{body}, $shop, $total);

    my $cta = banner_cta($r->{body});
    like($cta // '', qr{^/retarget/click\?}, 'the banner links via click');
    is(visit($v, 'GET', $cta, page => 1)->{status}, 302, 'click: 302');
    is(visit($v, 'GET', '/checkout', page => 1)->{status}, 200,
       'checkout page');
    api($v, 'POST', "/api/carts/$cart/contacts", { email => 'a+b@example.com' });
    my $o = api($v, 'POST', "/api/carts/$cart/checkout", { cart_id => $cart });
    my $order = $o->{data};
    like($order->{uuid} // '', qr/^[0-9a-f]{32}$/, 'an order');
    same_amount($order->{grand_total}, $total + 5,
                'the order: the cart and shipping');
    is(visit($v, 'GET', "/checkout/success/$order->{uuid}", page => 1)->{status},
       200, 'the success page');
    # placed again (a double click): the cart is gone, EverShop answers 404
    is(visit($v, 'POST', "/api/carts/$cart/checkout",
             body => encode_json({ cart_id => $cart }))->{status}, 404,
       'the same cart again: no order');

    settle();
    my $s = stats_today();
    is_deeply([ map { "$_=$s->{$_}" } sort grep { /^rejected/ } keys %$s ], [],
              "no value or event rejected");
    is($s->{product_views}, 3, 'product_views 3');
    is($s->{cart_adds}, 4, 'cart_adds 4');
    is($s->{checkouts}, 1, 'checkouts 1');
    is($s->{purchases}, 1, 'purchases 1');
    same_amount($s->{revenue}, $order->{grand_total}, 'revenue: the grand total');
    is($s->{'impressions:banner'}, 1, 'impressions:banner 1');
    is($s->{'clicks:banner'}, 1, 'clicks:banner 1');
    is($s->{'conversions:banner'}, 1, 'conversions:banner 1');
    same_amount($s->{'revenue:banner'}, $order->{grand_total},
                'revenue:banner: the grand total');

    move_cart_back($vid);
    $r = visit($v, 'GET', '/', page => 1);
    unlike($r->{body}, qr/rt-banner/, 'no reminder after the purchase');
});

whole_conf_ok('evershop');

stop_shop();
done_testing();
