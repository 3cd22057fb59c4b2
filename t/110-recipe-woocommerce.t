# conf-examples/woocommerce.conf, as an operator copies it, in front of a
# fake WooCommerce (t/fake/woocommerce.py: the Store API and the classic
# AJAX endpoints, with WooCommerce's field names and shapes).
#
# One visitor: two product views (JSON-LD in the page's footer), adds
# through the Store API, the classic wc-ajax form and a /batch, a removal by
# line key through the Store API and one through the classic wc-ajax call
# (the key known from an earlier Store API cart), a quantity change by key;
# then, the cart left alone, a later page shows the reminder, which must
# list exactly the cart the shop itself answers (names, quantities, prices,
# total); the visitor clicks it, checks out through the Store API and lands
# on the thank-you page: the purchase, counted once, with its value as the
# revenue of the variant shown.
use strict;
use warnings;
use lib 't/lib';
use Digest::MD5 qw(md5_hex);
use JSON::PP qw(decode_json);
use Test::Retarget;
use Test::Retarget::Redis;
use Test::Retarget::Recipe;

use_redis();
start_fake('woocommerce');
ok(start_recipe(recipe_conf('woocommerce.conf')), 'nginx runs the recipe')
    or BAIL_OUT('the recipe does not start');
ok(wait_up(), 'redis link up');

my $API = '/wp-json/wc/store/v1';
my $v = shopper();

sub ok_status {
    my ($r, $want, $name) = @_;
    is($r->{status}, $want, "$name: $want")
        or diag($r->{error} // $r->{raw} // '');
    return $r;
}

# the module's copy of the cart, once it has the wanted skus
sub module_cart_is {
    my ($want, $name) = @_;
    my $got;
    eventually(sub {
        $got = cart_lines($v->vid);
        my %g = map { $_ => "@{ money_at($got->{$_}) }" } keys %$got;
        my %w = map { $_ => "@{ $want->{$_} }" } keys %$want;
        return join('|', map { "$_=$g{$_}" } sort keys %g)
            eq join('|', map { "$_=$w{$_}" } sort keys %w);
    }, $WAIT);
    is_deeply({ map { $_ => money_at($got->{$_}) } keys %$got },
              $want, $name)
        or diag(explain($got));
}

# the shop's own cart, straight from the fake (not through nginx)
sub shop_cart_of {
    my ($who) = @_;
    my $r = $who->req(GET => "$API/cart", direct => 1);
    return decode_json($r->{body});
}

sub shop_cart { shop_cart_of($v) }

#--------------------------------------------------------------------------
# first visit: a fresh visitor id (its events would only count)
#--------------------------------------------------------------------------

ok_status($v->page('/'), 200, 'front page');
ok($v->vid, 'the module gave a visitor id');
my $vid = $v->vid;
my $meta = "rt:{$vid}:meta";

#--------------------------------------------------------------------------
# product views: everything from the page's JSON-LD
#--------------------------------------------------------------------------

ok_status($v->page('/product/hoodie-with-logo/'), 200, 'hoodie page');
ok_status($v->page('/product/salt-pepper-bowl/'), 200, 'bowl page');
ok(eventually(sub { redis_cmd('HEXISTS', $meta, 'v:woo-bowl-salt+pepper') }, $WAIT),
   'the bowl view is stored');
my @view = split /\t/, redis_cmd('HGET', $meta, 'v:woo-bowl-salt+pepper') // '', -1;
is_deeply([ @view[1 .. 4] ],
          [ '12.50', 'Salt + Pepper Bowl',
            'https://shop.example/wp-content/uploads/2024/01/bowl.jpg',
            'https://shop.example/product/salt-pepper-bowl/' ],
          'the view: price, name (its + kept), image, url from the JSON-LD');
like(redis_cmd('HGET', $meta, 'v:woo-hoodie-logo') // '',
     qr/^\d+\t45\.00\tHoodie with Logo\t/, 'the hoodie view');
is_deeply(redis_cmd('LRANGE', "rt:{$vid}:viewed", 0, -1),
          [ 'woo-bowl-salt+pepper', 'woo-hoodie-logo' ], 'viewed, newest first');

#--------------------------------------------------------------------------
# the cart
#--------------------------------------------------------------------------

# Store API add: the answer is the whole cart
ok_status($v->post_json("$API/cart/add-item", { id => 12, quantity => 2 }),
          201, 'Store API add-item');
module_cart_is({ 'woo-hoodie-logo' => [2, '45.00', 'Hoodie with Logo'] },
               'after add-item: the cart as the shop answered it');
is((split /\t/, redis_cmd('HGET', $meta, 'c:woo-hoodie-logo'), -1)[6],
   md5_hex('12'), 'the line key is remembered');

# classic AJAX add: the form's sku and quantity (no name or price is in
# the request or in the answer's fragments)
my $r = ok_status($v->post_form('/?wc-ajax=add_to_cart', product_sku => 'woo-beanie',
                                product_id => 13, quantity => 1),
                  200, 'classic wc-ajax add_to_cart');
like($r->{body}, qr/"cart_hash"/, 'the shop answered with fragments');
ok(eventually(sub { exists cart_lines($vid)->{'woo-beanie'} }, $WAIT),
   'the classic add is in the module\'s cart');
is(cart_lines($vid)->{'woo-beanie'}[0], 1, 'quantity 1 from the form');

# a batch of two adds: the last answer is the cart after both
$r = ok_status($v->post_json("$API/batch", { requests => [
        { path => '/wc/store/v1/cart/add-item', method => 'POST',
          body => { id => 14, quantity => 1 } },
        { path => '/wc/store/v1/cart/add-item', method => 'POST',
          body => { id => 15, quantity => 1 } } ] }),
    207, 'Store API batch');
is(scalar @{ decode_json($r->{body})->{responses} }, 2, 'two answers');
module_cart_is({ 'woo-hoodie-logo' => [2, '45.00', 'Hoodie with Logo'],
                 'woo-beanie' => [1, '18.00', 'Beanie'],
                 'woo-bowl-salt+pepper' => [1, '12.50', 'Salt + Pepper Bowl'],
                 'woo-cap' => [1, '16.00', 'Cap'] },
               'after the batch: four lines, the beanie now with its name and '
               . 'price');

# remove by key (Store API)
ok_status($v->post_json("$API/cart/remove-item", { key => md5_hex('13') }),
          200, 'Store API remove-item by key');
module_cart_is({ 'woo-hoodie-logo' => [2, '45.00', 'Hoodie with Logo'],
                 'woo-bowl-salt+pepper' => [1, '12.50', 'Salt + Pepper Bowl'],
                 'woo-cap' => [1, '16.00', 'Cap'] },
               'after remove-item: the beanie is gone');

# quantity by key (Store API)
ok_status($v->post_json("$API/cart/update-item",
                        { key => md5_hex('14'), quantity => 3 }),
          200, 'Store API update-item by key');
module_cart_is({ 'woo-hoodie-logo' => [2, '45.00', 'Hoodie with Logo'],
                 'woo-bowl-salt+pepper' => [3, '12.50', 'Salt + Pepper Bowl'],
                 'woo-cap' => [1, '16.00', 'Cap'] },
               'after update-item: three bowls');

# classic AJAX remove: only the line key, which the module knows from the
# Store API's cart; nothing answers with the cart here
ok_status($v->post_form('/?wc-ajax=remove_from_cart',
                        cart_item_key => md5_hex('15')),
          200, 'classic wc-ajax remove_from_cart by key');
module_cart_is({ 'woo-hoodie-logo' => [2, '45.00', 'Hoodie with Logo'],
                 'woo-bowl-salt+pepper' => [3, '12.50', 'Salt + Pepper Bowl'] },
               'after the classic remove: the cap is gone, by its key alone');

# the module's cart is the shop's
my $shop = shop_cart();
is_deeply({ map { $_->{sku} => [ $_->{quantity},
                                 money_of($_->{prices}{price},
                                          $_->{prices}{currency_minor_unit}),
                                 $_->{name} ] } @{ $shop->{items} } },
          { map { $_ => money_at(cart_lines($vid)->{$_}) }
                keys %{ cart_lines($vid) } },
          'the module holds exactly the cart the shop has');

#--------------------------------------------------------------------------
# the reminder, on a later visit (the cart left alone two hours)
#--------------------------------------------------------------------------

redis_cmd('HSET', $meta, 'cart_updated', time - 7200);
$r = ok_status($v->page('/shop/'), 200, 'a later page');
my $banner = banner_of($r->{body});
ok($banner, 'the page carries the reminder') or diag($r->{body});
is_deeply(banner_items($banner),
          [ sort { $a->[0] cmp $b->[0] }
            map { my $p = money_of($_->{prices}{price},
                                   $_->{prices}{currency_minor_unit});
                  [ $_->{name}, $_->{quantity}, $p,
                    sprintf('%.2f', $p * $_->{quantity}) ] }
            @{ $shop->{items} } ],
          'the reminder lists the shop\'s cart: names, quantities, prices')
    or diag($banner);
my $shop_total = money_of($shop->{totals}{total_price},
                          $shop->{totals}{currency_minor_unit});
is($shop_total, '127.50', 'the shop says 127.50');
is(banner_total($banner), $shop_total, 'the reminder\'s total is the shop\'s');

# the visitor follows it
my $cta = banner_cta($banner);
like($cta, qr{^/retarget/click\?v=banner&to=}, 'the banner links through click');
ok_status($v->req(GET => $cta), 302, 'click');

#--------------------------------------------------------------------------
# checkout (Store API) and the thank-you page
#--------------------------------------------------------------------------

my $addr = { first_name => 'Ada', last_name => 'Lovelace',
             address_1 => '1 Loop', city => 'London', postcode => 'N1',
             country => 'GB', email => 'ada+shop@example.com',
             phone => '' };
$r = ok_status($v->post_json("$API/checkout",
                             { billing_address => $addr,
                               shipping_address => $addr,
                               payment_method => 'cod' }),
               200, 'Store API checkout');
my $order = decode_json($r->{body});
ok($order->{order_id} && $order->{order_key}, 'the order: id and key');
ok(!exists $order->{totals} && !exists $order->{total},
   'like WooCommerce, the checkout answer has no total');
(my $thanks = $order->{payment_result}{redirect_url}) =~ s{^https://[^/]+}{};
like($thanks, qr{^/checkout/order-received/\d+/\?key=wc_order_},
     'redirected to the thank-you page');

$r = ok_status($v->page($thanks), 200, 'thank-you page');
ok(!banner_of($r->{body}), 'no reminder on the thank-you page');
my ($paid) = $r->{body} =~ m{__total total">Total: .*?</span>([\d.]+)</bdi>}s;
is($paid, $shop_total, 'the shop\'s thank-you page says the same total');
ok_status($v->page($thanks), 200, 'the thank-you page reloaded');

ok(eventually(sub { redis_cmd('HGET', $meta, 'purchased') }, $WAIT),
   'the purchase is stored');
settle();
my $s = hash('rt:stats:' . today());
is($s->{purchases}, 1, 'one purchase');
is($s->{purchases_duplicate}, 1, 'the reload counted as a duplicate');
is($s->{'impressions:banner'}, 1, 'one impression of variant banner');
is($s->{'clicks:banner'}, 1, 'one click on it');
is($s->{'conversions:banner'}, 1, 'the purchase is banner\'s conversion');
cmp_ok($s->{'revenue:banner'} // 0, '==', $shop_total,
       'and its value is banner\'s revenue');
cmp_ok($s->{revenue} // 0, '==', $shop_total, 'and the day\'s revenue');
is($s->{product_views}, 2, 'two product views');
is($s->{checkouts}, 1, 'one checkout (the Store API POST)');

# bought: no reminder any more, the cart is gone
$r = ok_status($v->page('/shop/'), 200, 'a page after the purchase');
ok(!banner_of($r->{body}), 'no reminder after the purchase');
is_deeply(cart_lines($vid), {}, 'the module\'s cart is empty');

#--------------------------------------------------------------------------
# another visitor, on a classic theme: the single product form
#--------------------------------------------------------------------------

my $w = shopper();
ok_status($w->page('/'), 200, 'second visitor: front page');
$r = ok_status($w->post_multipart('/product/cap/', quantity => 2,
                                  'add-to-cart' => 15),
               200, 'the product form posted to the product page');
like($r->{body}, qr/"sku":"woo-cap"/, 'which answers with the page again');
my $line;
ok(eventually(sub { $line = cart_lines($w->vid)->{'woo-cap'} }, $WAIT),
   'the form\'s add is in the module\'s cart');
is_deeply([ @{ money_at($line) }, @$line[3, 4] ],
          [ 2, '16.00', 'Cap',
            'https://shop.example/wp-content/uploads/2024/01/cap-2.jpg',
            'https://shop.example/product/cap/' ],
          'its quantity from the form; name, price, image, url from the page');

# a Store API read of the cart changes nothing (nor the cart's idle clock)
my $wmeta = 'rt:{' . $w->vid . '}:meta';
redis_cmd('HSET', $wmeta, 'cart_updated', 1000);
ok_status($w->req(GET => "$API/cart"), 200, 'Store API GET cart');
ok_status($w->page('/'), 200, 'a page after it');
is(redis_cmd('HGET', $wmeta, 'cart_updated'), 1000,
   'no sync from a read: the cart\'s time stays');

# the classic cart page's remove link names only the line's key: the
# form's add told the module none, so the line stays (what the module
# cannot see without a Store API cart) ...
$r = ok_status($w->req(GET => '/cart/?remove_item=' . md5_hex('15')
                              . '&_wpnonce=0a1b2c3d4e'),
               302, 'cart page: remove the cap by its key');
is_deeply(shop_cart_of($w)->{items}, [], 'the shop\'s cart is empty');
sleep 0.3;
ok(cart_lines($w->vid)->{'woo-cap'}, 'the module still has the cap: no key '
   . 'was ever seen for it');

# ... until the next Store API answer, which replaces the cart
ok_status($w->post_json("$API/cart/add-item", { id => 13, quantity => 1 }),
          201, 'Store API add-item');
ok(eventually(sub { join(',', keys %{ cart_lines($w->vid) }) eq 'woo-beanie' }, $WAIT),
   'the module\'s cart is the shop\'s again: the beanie alone');

# now the key is known: a refused remove (bad nonce) changes nothing, a
# done one (the redirect) removes the line
ok_status($w->req(GET => '/cart/?remove_item=' . md5_hex('13')
                         . '&_wpnonce=forged'),
          200, 'cart page: a remove with a bad nonce is refused');
ok_status($w->req(GET => '/cart/?remove_item=' . md5_hex('13')
                         . '&_wpnonce=0a1b2c3d4e'),
          302, 'cart page: remove the beanie by its key');
ok(eventually(sub { !%{ cart_lines($w->vid) } }, $WAIT),
   'the module removed it by its key');
is_deeply(shop_cart_of($w)->{items}, [], 'as the shop did');

# what the module said about the unknown key: counted, with its reason
settle();
is(hash('rt:stats:' . today())->{'rejected:unknown_line'}, 1,
   'the remove of a key the module never saw: rejected:unknown_line');

stop_recipe('woocommerce');
done_testing();
