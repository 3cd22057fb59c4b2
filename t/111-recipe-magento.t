# conf-examples/magento.conf, as an operator copies it, in front of a fake
# Magento 2 with the Luma storefront's calls (t/fake/magento.py, Magento's
# field names and shapes).
#
# One visitor: two product views (microdata and data-price-amount), three
# adds (multipart, each followed by the customer-data cart section the
# storefront reloads), a removal and a quantity change by the cart's
# item_id through the mini-cart (checked before the section comes back:
# the line id alone is enough), then, the cart left alone, a later page
# shows the reminder, which must list exactly the cart the shop's own
# section answers (names, quantities, prices, subtotal); the visitor clicks
# it, checks out (REST payment-information) and sees the success page: the
# purchase, once, with its value as the revenue of the variant shown.
use strict;
use warnings;
use lib 't/lib';
use JSON::PP qw(decode_json);
use Test::Retarget;
use Test::Retarget::Redis;
use Test::Retarget::Recipe;

use_redis();
start_fake('magento');
ok(start_recipe(recipe_conf('magento.conf')), 'nginx runs the recipe')
    or BAIL_OUT('the recipe does not start');
ok(wait_up(), 'redis link up');

my $v = shopper();
my $FORM_KEY = 'Zp7fQ2kLm9xRt4Va';
my $SECTIONS = '/customer/section/load/?sections=cart%2Cdirectory-data'
             . '%2Cmessages&force_new_section_timestamp=true&_=1700000000001';

sub ok_status {
    my ($r, $want, $name) = @_;
    is($r->{status}, $want, "$name: $want")
        or diag($r->{error} // $r->{raw} // '');
    return $r;
}

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

# what the storefront does after each change: reload the cart section
sub sections {
    my ($name) = @_;
    my $r = ok_status($v->req(GET => $SECTIONS,
                              headers => ['X-Requested-With: XMLHttpRequest']),
                      200, "$name: the cart section reloaded");
    return decode_json($r->{body})->{cart};
}

sub add {
    my ($id, $qty, $name) = @_;
    my $r = ok_status($v->post_multipart(
                "/checkout/cart/add/uenc/aHR0cHM6Ly9tYWdlbnRvLmV4YW1wbGUv/product/$id/",
                product => $id, selected_configurable_option => '',
                related_product => '', item => $id, form_key => $FORM_KEY,
                qty => $qty),
            200, "add $name");
    is($r->{body}, '[]', "add $name: Magento's AJAX answer");
    return sections("add $name");
}

sub item_of {
    my ($cart, $sku) = @_;
    my ($it) = grep { $_->{product_sku} eq $sku } @{ $cart->{items} };
    return $it;
}

#--------------------------------------------------------------------------
# first visit, then the product pages
#--------------------------------------------------------------------------

ok_status($v->page('/'), 200, 'home page');
my $vid = $v->vid;
ok($vid, 'the module gave a visitor id');
my $meta = "rt:{$vid}:meta";

ok_status($v->page('/joust-duffle-bag.html'), 200, 'duffle bag page');
ok_status($v->page('/affirm-water-bottle.html'), 200, 'water bottle page');
ok(eventually(sub { redis_cmd('HEXISTS', $meta, 'v:24-UG06') }, $WAIT),
   'the bottle view is stored');
like(redis_cmd('HGET', $meta, 'v:24-MB01') // '',
     qr/^\d+\t34(?:\.00)?\tJoust Duffle Bag\t/,
     'the duffle bag view: price and name from the microdata');
like(redis_cmd('HGET', $meta, 'v:24-UG06') // '',
     qr/^\d+\t7(?:\.00)?\tAffirm Water Bottle\t/, 'the bottle view');

#--------------------------------------------------------------------------
# the cart
#--------------------------------------------------------------------------

add(1, 2, 'the duffle bag');
module_cart_is({ '24-MB01' => [2, '34.00', 'Joust Duffle Bag'] },
               'the section replaced the cart');
add(44, 1, 'the bottle');
my $cart = add(4, 1, 'the messenger bag');
module_cart_is({ '24-MB01' => [2, '34.00', 'Joust Duffle Bag'],
                 '24-UG06' => [1, '7.00', 'Affirm Water Bottle'],
                 '24-MB05' => [1, '45.00', 'Wayfarer Messenger Bag'] },
               'three lines');
my $bag = item_of($cart, '24-MB05');
my $bottle = item_of($cart, '24-UG06');
is((split /\t/, redis_cmd('HGET', $meta, 'c:24-MB05'), -1)[6],
   $bag->{item_id}, 'the line knows its item_id');

# the mini-cart's remove: only item_id and form_key
my $r = ok_status($v->post_form('/checkout/sidebar/removeItem/',
                                item_id => $bag->{item_id},
                                form_key => $FORM_KEY),
                  200, 'mini-cart removeItem');
is(decode_json($r->{body})->{success}, JSON::PP::true, 'Magento removed it');
module_cart_is({ '24-MB01' => [2, '34.00', 'Joust Duffle Bag'],
                 '24-UG06' => [1, '7.00', 'Affirm Water Bottle'] },
               'removed by item_id alone, before the section comes back');

# a refused removal (an unknown item) changes nothing
ok_status($v->post_form('/checkout/sidebar/removeItem/', item_id => 99999,
                        form_key => $FORM_KEY), 200, 'removeItem of no item');

# the mini-cart's quantity change
ok_status($v->post_form('/checkout/sidebar/updateItemQty/',
                        item_id => $bottle->{item_id}, item_qty => 3,
                        form_key => $FORM_KEY),
          200, 'mini-cart updateItemQty');
module_cart_is({ '24-MB01' => [2, '34.00', 'Joust Duffle Bag'],
                 '24-UG06' => [3, '7.00', 'Affirm Water Bottle'] },
               'three bottles, by item_id alone');

$cart = sections('after the mini-cart');
module_cart_is({ map { $_->{product_sku} => [ $_->{qty},
                                              money_of($_->{product_price_value}),
                                              $_->{product_name} ] }
                 @{ $cart->{items} } },
               'the module holds exactly the cart the shop has');

# a section load without the cart leaves the cart alone
ok_status($v->req(GET => '/customer/section/load/?sections=messages'), 200,
          'sections without the cart');

#--------------------------------------------------------------------------
# the reminder, on a later visit (the cart left alone two hours)
#--------------------------------------------------------------------------

redis_cmd('HSET', $meta, 'cart_updated', time - 7200);
$r = ok_status($v->page('/'), 200, 'a later page');
my $banner = banner_of($r->{body});
ok($banner, 'the page carries the reminder') or diag($r->{body});
note(join "\n", map { "@$_" } @{ banner_items($banner) });
note($1) while $banner =~ m{<small>([^<]*)</small>}g;
is_deeply(banner_items($banner),
          [ sort { $a->[0] cmp $b->[0] }
            map { my $p = money_of($_->{product_price_value});
                  [ $_->{product_name}, $_->{qty}, $p,
                    sprintf('%.2f', $p * $_->{qty}) ] }
            @{ $cart->{items} } ],
          'the reminder lists the shop\'s cart: names, quantities, prices')
    or diag($banner);
my $shop_total = money_of($cart->{subtotalAmount});
is($shop_total, '89.00', 'the shop says 89.00');
is(banner_total($banner), $shop_total, 'the reminder\'s total is the shop\'s');

my $cta = banner_cta($banner);
like($cta, qr{^/retarget/click\?v=banner&to=}, 'the banner links through click');
ok_status($v->req(GET => $cta), 302, 'click');

#--------------------------------------------------------------------------
# checkout, order, success page
#--------------------------------------------------------------------------

$r = ok_status($v->page('/checkout/'), 200, 'checkout page');
ok(!banner_of($r->{body}), 'no reminder on the checkout page');
my ($masked) = $r->{body} =~ /"entity_id": "([^"]+)"/;
ok($masked, 'the masked quote id of the checkout');

$r = ok_status($v->post_json(
        "/rest/default/V1/guest-carts/$masked/payment-information",
        { cartId => $masked, email => 'ada+shop@example.com',
          paymentMethod => { method => 'checkmo', po_number => undef,
                             additional_data => undef },
          billingAddress => { countryId => 'US', regionId => '12',
                              street => ['1 Loop'], city => 'Cupertino',
                              postcode => '95014', firstname => 'Ada',
                              lastname => 'Lovelace',
                              telephone => '555-0100' } }),
    200, 'payment-information places the order');
like($r->{body}, qr/^"\d+"$/, 'Magento answers with the order id only');

$r = ok_status($v->page('/checkout/onepage/success/'), 200, 'success page');
like($r->{body}, qr/Your order # is: <span>\d+/, 'the success page');
ok(!banner_of($r->{body}), 'no reminder on the success page');
ok_status($v->page('/checkout/onepage/success/'), 302,
          'a reload of the success page: Magento redirects to the cart');

ok(eventually(sub { redis_cmd('HGET', $meta, 'purchased') }, $WAIT),
   'the purchase is stored');
settle();
my $s = hash('rt:stats:' . today());
is($s->{purchases}, 1, 'one purchase (the reload is none)');
is($s->{checkouts}, 1, 'one checkout');
is($s->{'impressions:banner'}, 1, 'one impression of variant banner');
is($s->{'clicks:banner'}, 1, 'one click on it');
is($s->{'conversions:banner'}, 1, 'the purchase is banner\'s conversion');
cmp_ok($s->{'revenue:banner'} // 0, '==', $shop_total,
       'and its value is banner\'s revenue');
cmp_ok($s->{revenue} // 0, '==', $shop_total, 'and the day\'s revenue');
is($s->{product_views}, 2, 'two product views');

$r = ok_status($v->page('/'), 200, 'a page after the purchase');
ok(!banner_of($r->{body}), 'no reminder after the purchase');

stop_recipe('magento');
done_testing();
