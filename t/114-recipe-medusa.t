# conf-examples/medusa.conf in front of a fake Medusa v2 store API and
# storefront (t/fake/medusa.py): a visitor views three products, adds
# them (one twice as many), removes one line by its id (DELETE, no body),
# sets another's quantity, leaves; the reminder on a later page lists
# exactly the shop's cart; the visitor follows the banner, checks out and
# completes the cart, whose order total is the revenue of the banner shown.
#
# Everything is read from what Medusa sends and answers: the product
# pages' JSON-LD, the whole cart in every line-item call's answer (the
# DELETE's "parent"), the order in the complete call's answer.  The clock
# is moved as t/080 does, through the stored timestamps.
use strict;
use warnings;
use lib 't/lib';
use JSON::PP qw(decode_json encode_json);
use Test::Retarget;
use Test::Retarget::Redis;
use Test::Retarget::Campaign qw(rvid);
use Test::Retarget::ShopRecipe;

use_redis();

my $SHOP = start_shop('medusa');
my $CONF = { http_config => recipe_http('medusa', $SHOP), config => '' };

my %P = (
    shirt  => { variant => 'variant_01JSHIRTM', sku => 'SHIRT-M',
                name => 'Medusa T-Shirt', price => '15.00',
                uri => '/products/t-shirt' },
    sweat  => { variant => 'variant_01JSWEATL', sku => 'SWEAT-L',
                name => 'Medusa Sweatshirt', price => '29.50',
                uri => '/products/sweatshirt' },
    shorts => { variant => 'variant_01JSHORTS', sku => 'SHORTS-S',
                name => 'Shorts + "Sweat" 100%', price => '12.75',
                uri => '/products/shorts' },
);

sub api {
    my ($v, $method, $uri, $body) = @_;
    my $r = visit($v, $method, $uri,
                  defined $body ? (body => encode_json($body)) : ());
    is($r->{status}, 200, "$method $uri: 200") or diag($r->{body});
    return eval { decode_json($r->{body}) } // {};
}

sub shop_cart {
    my ($v, $cart) = @_;
    my $j = decode_json(shop_get($v, "/store/carts/$cart")->{body})->{cart};
    my %c = map { $_->{variant_sku} => {
                      qty => $_->{quantity},
                      price => sprintf('%.2f', $_->{unit_price}),
                      name => $_->{product_title}, line => $_->{id} } }
            @{ $j->{items} };
    return (\%c, sprintf('%.2f', $j->{total}));
}

section('a visitor through Medusa: views, cart, reminder, purchase', $CONF, {}, sub {
    my $vid = rvid('medusa-buyer');
    my $v = new_visitor($vid);

    for my $p (@P{qw(shirt sweat shorts)}) {
        my $r = visit($v, 'GET', $p->{uri}, page => 1);
        is($r->{status}, 200, "GET $p->{uri}");
        like($r->{body}, qr{application/ld\+json}, 'a product page');
    }
    ok(eventually(sub { defined view_line_of($vid, 'SHORTS-S') }, 5),
       'the views are stored');
    for my $p (@P{qw(shirt sweat shorts)}) {
        my $l = view_line_of($vid, $p->{sku});
        is($l && $l->{name}, $p->{name}, "view $p->{sku}: name");
        is(amount($l && $l->{price}), $p->{price}, "view $p->{sku}: price");
    }

    my $cart = api($v, 'POST', '/store/carts', { region_id => 'reg_01' })
               ->{cart}{id};
    like($cart // '', qr/^cart_/, 'a cart');
    api($v, 'POST', "/store/carts/$cart/line-items",
        { variant_id => $P{$_}{variant}, quantity => $_ eq 'sweat' ? 2 : 1 })
        for qw(shirt sweat shorts);
    my $mine = wait_cart($vid, map { $_->{sku} } values %P);
    my ($shop) = shop_cart($v, $cart);
    is($mine->{'SHIRT-M'}{line}, $shop->{'SHIRT-M'}{line},
       "the module keeps Medusa's line id");

    # remove one line, set another's quantity, by their ids alone
    my $d = api($v, 'DELETE',
                "/store/carts/$cart/line-items/$shop->{'SHIRT-M'}{line}");
    ok($d->{deleted}, 'deleted');
    my $u = api($v, 'POST',
                "/store/carts/$cart/line-items/$shop->{'SWEAT-L'}{line}",
                { quantity => 3 });
    my $total;
    ($shop, $total) = shop_cart($v, $cart);
    is_deeply([ sort keys %$shop ], [qw(SHORTS-S SWEAT-L)],
              'the shop: sweatshirt and shorts');
    is($shop->{'SWEAT-L'}{qty}, 3, 'the shop: 3 sweatshirts');
    eventually(sub { $mine = cart_lines($vid);
                     join(' ', sort keys %$mine) eq 'SHORTS-S SWEAT-L'
                     && ($mine->{'SWEAT-L'}{qty} // 0) == 3 }, 5);
    for my $sku (sort keys %$shop) {
        is(amount($mine->{$sku}{price}), $shop->{$sku}{price},
           "module's $sku: price");
        is($mine->{$sku}{$_}, $shop->{$sku}{$_}, "module's $sku: $_")
            for qw(qty name line);
    }

    move_cart_back($vid);
    my $r = visit($v, 'GET', '/', page => 1);
    is($r->{status}, 200, 'GET / (two hours later)');
    banner_matches($r->{body}, $shop, $total);

    my $cta = banner_cta($r->{body});
    like($cta // '', qr{^/retarget/click\?}, 'the banner links via click');
    is(visit($v, 'GET', $cta, page => 1)->{status}, 302, 'click: 302');
    is(visit($v, 'GET', '/checkout', page => 1)->{status}, 200,
       'checkout page');
    my $c = api($v, 'POST', "/store/carts/$cart/complete", {});
    is($c->{type}, 'order', 'completed: an order');
    my $order = $c->{order};
    same_amount($order->{total}, $total + 8, 'the order: the cart and shipping');
    is(visit($v, 'GET', "/order/$order->{id}/confirmed", page => 1)->{status},
       200, 'the confirmation page');

    settle();
    my $s = stats_today();
    is_deeply([ map { "$_=$s->{$_}" } sort grep { /^rejected/ } keys %$s ], [],
              "no value or event rejected");
    is($s->{product_views}, 3, 'product_views 3');
    is($s->{checkouts}, 1, 'checkouts 1');
    is($s->{purchases}, 1, 'purchases 1');
    same_amount($s->{revenue}, $order->{total}, 'revenue: the order total');
    is($s->{'impressions:banner'}, 1, 'impressions:banner 1');
    is($s->{'clicks:banner'}, 1, 'clicks:banner 1');
    is($s->{'conversions:banner'}, 1, 'conversions:banner 1');
    same_amount($s->{'revenue:banner'}, $order->{total},
                'revenue:banner: the order total');

    move_cart_back($vid);
    $r = visit($v, 'GET', '/', page => 1);
    unlike($r->{body}, qr/rt-banner/, 'no reminder after the purchase');
});

# a cart that cannot complete (empty): {"type": "cart", "error"}: nothing
section('Medusa: a failed completion is no purchase', $CONF, {}, sub {
    my $v = new_visitor(rvid('medusa-failed'));
    my $cart = api($v, 'POST', '/store/carts', {})->{cart}{id};
    my $c = api($v, 'POST', "/store/carts/$cart/complete", {});
    is($c->{type}, 'cart', 'type cart');
    ok($c->{error}, 'with an error');
    settle();
    is(stats_today()->{purchases} // 0, 0, 'no purchase');
});

whole_conf_ok('medusa');

stop_shop();
done_testing();
