# conf-examples/prestashop.conf in front of a fake PrestaShop 8
# (t/fake/prestashop.py): a visitor views three products, adds them
# (one twice as many), removes one line and raises another from the cart
# page, leaves; the reminder on a later page lists exactly the shop's
# cart (names, quantities, prices, total); the visitor follows the banner,
# checks out and buys, and the order's total is the revenue of the banner
# shown, once however often the confirmation page is loaded.
#
# Everything is read from what PrestaShop sends and answers: the product
# pages' JSON-LD, the cart controller's JSON answer (the whole cart, as
# cart_sync), the confirmation page's `prestashop` object.  The clock is
# moved as t/080 does, through the stored timestamps.
use strict;
use warnings;
use lib 't/lib';
use JSON::PP qw(decode_json);
use Test::Retarget;
use Test::Retarget::Redis;
use Test::Retarget::Campaign qw(rvid);
use Test::Retarget::ShopRecipe;

use_redis();

my $SHOP = start_shop('prestashop');
my $CONF = { http_config => recipe_http('prestashop', $SHOP), config => '' };

my %P = (
    tshirt => { id => 1, attr => 1, sku => 'demo_1',
                name => 'Hummingbird printed t-shirt', price => '23.90',
                uri => '/men/1-1-hummingbird-printed-t-shirt.html' },
    mug    => { id => 6, attr => 0, sku => 'demo_11',
                name => 'Mug The best is yet to come', price => '11.90',
                uri => '/home-accessories/6-mug-the-best-is-yet-to-come.html' },
    bowl   => { id => 19, attr => 0, sku => 'demo_19',
                name => 'Salt + Pepper 100% Bowl', price => '15.00',
                uri => '/home-accessories/19-salt-pepper-bowl.html' },
);

# the cart controller, as the theme's cart.js calls it
sub cart_post {
    my ($v, %f) = @_;
    my $body = join '&', (map { "$_=$f{$_}" } sort keys %f),
               'token=4f1b2c3d', 'ajax=1', 'action=update';
    my $r = visit($v, 'POST', '/cart', body => $body,
                  type => 'application/x-www-form-urlencoded; charset=UTF-8');
    is($r->{status}, 200, "POST /cart $body: 200");
    my $j = eval { decode_json($r->{body}) } // {};
    ok($j->{success}, 'the shop answers success') or diag($r->{body});
    return $j;
}

# the shop's own cart: { sku => { qty, price, name } } and its total
sub shop_cart {
    my ($v) = @_;
    my $j = decode_json(shop_get($v, '/_fake/cart')->{body});
    my %c = map { $_->{reference} => { qty => $_->{quantity},
                                       price => sprintf('%.2f', $_->{price_amount}),
                                       name => $_->{name} } }
            @{ $j->{products} };
    return (\%c, sprintf('%.2f', $j->{totals}{total}{amount}));
}

section('a visitor through PrestaShop: views, cart, reminder, purchase', $CONF, {}, sub {
    my $vid = rvid('prestashop-buyer');
    my $v = new_visitor($vid);

    # product views: everything from the JSON-LD
    for my $p (@P{qw(tshirt mug bowl)}) {
        my $r = visit($v, 'GET', $p->{uri}, page => 1);
        is($r->{status}, 200, "GET $p->{uri}");
        like($r->{body}, qr{"\@type": "Product"}, 'a product page');
    }
    ok(eventually(sub { defined view_line_of($vid, 'demo_19') }, 5),
       'the views are stored');
    for my $p (@P{qw(tshirt mug bowl)}) {
        my $l = view_line_of($vid, $p->{sku});
        is($l && $l->{name}, $p->{name}, "view $p->{sku}: name");
        is(amount($l && $l->{price}), $p->{price}, "view $p->{sku}: price");
    }
    like((view_line_of($vid, 'demo_1') // {})->{url} // '',
         qr{/men/1-1-hummingbird-printed-t-shirt\.html$}, 'view: url');

    # two adds and one more, then the cart page's "delete" and "+"
    cart_post($v, add => 1, id_product => 1, id_product_attribute => 1,
              qty => 1);
    cart_post($v, add => 1, id_product => 6, id_product_attribute => 0,
              qty => 2);
    cart_post($v, add => 1, id_product => 19, id_product_attribute => 0,
              qty => 1);
    wait_cart($vid, qw(demo_1 demo_11 demo_19));
    cart_post($v, delete => 1, id_product => 1, id_product_attribute => 1);
    my $j = cart_post($v, update => 1, op => 'up', qty => 1, id_product => 6,
                      id_product_attribute => 0);
    is($j->{quantity}, 3, 'the shop: 3 mugs');

    my ($shop, $total) = shop_cart($v);
    is_deeply([ sort keys %$shop ], [qw(demo_11 demo_19)],
              'the shop: mug and bowl');
    my $mine = wait_cart($vid, keys %$shop);
    eventually(sub { $mine = cart_lines($vid);
                     ($mine->{demo_11}{qty} // 0) == 3 }, 5);
    for my $sku (sort keys %$shop) {
        is(amount($mine->{$sku}{price}), $shop->{$sku}{price},
           "module's $sku: price");
        is($mine->{$sku}{$_}, $shop->{$sku}{$_}, "module's $sku: $_")
            for qw(qty name);
    }

    # the theme's protocol-relative cover image, kept as https
    is($mine->{demo_11}{image},
       'https://shop.example.com/6-small_default/p.jpg',
       'the cart line keeps its (protocol-relative) image');

    # the visitor leaves; two hours later a page shows the reminder
    move_cart_back($vid);
    my $r = visit($v, 'GET', '/', page => 1);
    is($r->{status}, 200, 'GET / (two hours later)');
    banner_matches($r->{body}, $shop, $total);

    # the banner leads to the cart; checkout; the payment module confirms
    my $cta = banner_cta($r->{body});
    like($cta // '', qr{^/retarget/click\?}, 'the banner links via click');
    $r = visit($v, 'GET', $cta, page => 1);
    is($r->{status}, 302, 'click: 302');
    is(visit($v, 'GET', '/order', page => 1)->{status}, 200, 'checkout page');
    $r = visit($v, 'POST', '/module/ps_wirepayment/validation',
               body => 'confirm=1', type => 'application/x-www-form-urlencoded');
    is($r->{status}, 302, 'the payment module: 302');
    my ($conf) = @{ $r->{headers}{location} || [] };
    like($conf // '', qr{/order-confirmation\?id_cart=\d+&id_module=\d+&id_order=\d+&key=\w+$},
         'to the order confirmation');
    $conf =~ s{^https?://[^/]+}{};

    # a forged confirmation link: PrestaShop redirects, nothing is bought
    (my $forged = $conf) =~ s/key=\w+/key=0000/;
    is(visit($v, 'GET', $forged, page => 1)->{status}, 302,
       'a forged confirmation: 302');
    $r = visit($v, 'GET', $conf, page => 1);
    is($r->{status}, 200, 'the confirmation page');
    like($r->{body}, qr{Your order is confirmed}, 'confirmed');
    my ($paid) = $r->{body} =~ /"total_paid": ([\d.]+)/;
    same_amount($paid, $total + 7, 'the order: the cart and shipping');
    visit($v, 'GET', $conf, page => 1);        # reloaded
    # and without friendly URLs (location = /index.php): the same order
    (my $plain = $conf) =~ s{^/order-confirmation\?}{/index.php?controller=order-confirmation&};
    is(visit($v, 'GET', $plain, page => 1)->{status}, 200,
       'the confirmation page as index.php?controller=order-confirmation');

    settle();
    my $s = stats_today();
    is_deeply([ map { "$_=$s->{$_}" } sort grep { /^rejected/ } keys %$s ], [],
              "no value or event rejected");
    is($s->{product_views}, 3, 'product_views 3');
    is($s->{checkouts}, 1, 'checkouts 1');
    is($s->{purchases}, 1, 'purchases 1');
    is($s->{purchases_duplicate}, 2,
       'the reload and the index.php page: purchases_duplicate 2');
    same_amount($s->{revenue}, $paid, 'revenue: the order total');
    is($s->{'impressions:banner'}, 1, 'impressions:banner 1');
    is($s->{'clicks:banner'}, 1, 'clicks:banner 1');
    is($s->{'conversions:banner'}, 1, 'conversions:banner 1');
    same_amount($s->{'revenue:banner'}, $paid,
                'revenue:banner: the order total');

    # the cart is bought: no reminder any more
    move_cart_back($vid);
    $r = visit($v, 'GET', '/', page => 1);
    unlike($r->{body}, qr/rt-banner/, 'no reminder after the purchase');
});

whole_conf_ok('prestashop');

stop_shop();
done_testing();
