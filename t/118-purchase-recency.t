# Issue 11, points 2 and 4: after a purchase nothing bought is reminded,
# in a cart or in a browse reminder, and browse reminders stay quiet for
# retarget_delay after it; a cart the shop no longer keeps
# (retarget_cart_lifetime) is no cart reminder, its products may be a
# browse one; retarget_window defaults to 7d.
#
# The purchase is written (store.c's purchase script: the cart's lines,
# the viewed products of the same skus and their entries in the
# recently-viewed list go) and read defensively (state.c: a hash written
# before the script, its bought lines still there).  Through real nginx
# and a real Redis, with the table steps of t/080
# (Test::Retarget::Campaign); times are moved in Redis, except in one
# block where a 4s delay really passes.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis;
use Test::Retarget::Campaign;

use_redis();

default_http_config(campaign_http(timeout => '2s'));
default_section(user_files => ">>> page.html\n$Test::Retarget::Campaign::PAGE",
                link_up => 1);

run_tests();

__DATA__

=== TEST 1: a purchase deletes what it bought from the viewed products
--- config
retarget on;
retarget_delay 1h;
retarget_frequency 10 1d pages=100;
location / { }
location /retarget/ { retarget_control; }
location = /e/product {
    retarget_event product sku=$arg_sku name=$arg_name price=$arg_price;
    return 200 "ok\n";
}
location = /e/add {
    retarget_event cart_add sku=$arg_sku qty=$arg_qty name=$arg_name
                   price=$arg_price;
    return 200 "ok\n";
}
location = /e/buy {
    retarget_event purchase order=$arg_order value=$arg_value;
    return 200 "ok\n";
}
--- steps
GET /e/product?sku=HAT&name=Hat&price=5.00 as buy-A consent=ack
    status 200
GET /e/product?sku=MUG&name=Mug&price=12.00 as buy-A consent=ack
GET /e/product?sku=CUP&name=Cup&price=3.00 as buy-A consent=ack
GET /e/add?sku=MUG&qty=2&name=Mug&price=12.00 as buy-A consent=ack
GET /e/add?sku=CUP&name=Cup&price=3.00 as buy-A consent=ack
wait  HEXISTS {{meta buy-A}} c:CUP => 1
check HEXISTS {{meta buy-A}} c:MUG => 1
check HEXISTS {{meta buy-A}} v:MUG => 1
check LRANGE rt:{{{vid buy-A}}}:viewed 0 -1 => [CUP MUG HAT]
# B: the same views and cart, never bought
GET /e/product?sku=HAT&name=Hat&price=5.00 as buy-B consent=ack
GET /e/product?sku=MUG&name=Mug&price=12.00 as buy-B consent=ack
GET /e/add?sku=MUG&qty=2&name=Mug&price=12.00 as buy-B consent=ack
wait  HEXISTS {{meta buy-B}} c:MUG => 1
GET /e/buy?order=O-1&value=27.00 as buy-A consent=ack
    status 200
wait  HEXISTS {{meta buy-A}} c:MUG => 0
check HEXISTS {{meta buy-A}} c:CUP => 0
check HEXISTS {{meta buy-A}} v:MUG => 0
check HEXISTS {{meta buy-A}} v:CUP => 0
check HEXISTS {{meta buy-A}} v:HAT => 1
check LRANGE rt:{{{vid buy-A}}}:viewed 0 -1 => [HAT]
check HGET {{meta buy-A}} cart_cleared => /^\d{13}$/
check EXISTS rt:{{{vid buy-A}}}:cart => 0
# a thank-you page loaded again clears nothing more
GET /e/buy?order=O-1&value=27.00 as buy-A consent=ack
sleep 0.3
check HEXISTS {{meta buy-A}} v:HAT => 1
# right after: nothing at all, the viewed hat neither
page buy-A => purchased
# once the delay has passed: the browse reminder, the hat only
seed buy-A purchased=now-2h v:HAT view at=now-3h name=Hat price=5.00
page buy-A => shown count=0
    banner like aria-label="Recently viewed"
    names Hat
# B never bought: the cart
seed buy-B cart_updated=now-2h
page buy-B => shown count=2
    banner like aria-label="Your cart"
    names Mug
# a product bought and viewed again since is interest again: shown
GET /e/product?sku=MUG&name=Mug&price=12.00 as buy-A consent=ack
wait  HEXISTS {{meta buy-A}} v:MUG => 1
seed buy-A v:MUG view at=now-90m name=Mug price=12.00
page buy-A => shown
    names Mug Hat



=== TEST 2: the delay really passes: quiet, then nothing bought
--- config
retarget on;
retarget_delay 4s;
retarget_frequency 10 1d pages=100;
location / { }
location /retarget/ { retarget_control; }
location = /e/product {
    retarget_event product sku=$arg_sku name=$arg_name price=$arg_price;
    return 200 "ok\n";
}
location = /e/add {
    retarget_event cart_add sku=$arg_sku qty=$arg_qty name=$arg_name
                   price=$arg_price;
    return 200 "ok\n";
}
location = /e/buy {
    retarget_event purchase order=$arg_order value=$arg_value;
    return 200 "ok\n";
}
--- steps
GET /e/product?sku=HAT&name=Hat&price=5.00 as late-A consent=ack
GET /e/product?sku=MUG&name=Mug&price=12.00 as late-A consent=ack
GET /e/add?sku=MUG&name=Mug&price=12.00 as late-A consent=ack
wait HEXISTS {{meta late-A}} c:MUG => 1
GET /e/buy?order=O-2&value=12.00 as late-A consent=ack
wait HEXISTS {{meta late-A}} v:MUG => 0
# within the 4s delay after the purchase: quiet (a slow run has margin)
page late-A => purchased
sleep 4.2
page late-A => shown count=0
    banner like aria-label="Recently viewed"
    names Hat
    banner unlike Mug



=== TEST 3: a hash from before the purchase script: read defensively
--- config
retarget on;
retarget_frequency 10 1d pages=100;
location / { }
location /retarget/ { retarget_control; }
--- steps
# bought 2h ago (cart_cleared with it); the lines of the cart still there,
# and the views of the same skus, before the purchase
seed old-A purchased=now-2h cart_cleared=ms:now-2h
seed old-A c:MUG cart at=now-3h name=Mug c:CUP cart at=now-3h name=Cup
seed old-A v:MUG view at=now-3h name=Mug v:CUP view at=now-150m name=Cup
seed old-A v:HAT view at=now-4h name=Hat
# B: the mug viewed again after the purchase
seed old-B purchased=now-2h cart_cleared=ms:now-2h c:MUG cart at=now-3h name=Mug
seed old-B v:MUG view at=now-1h name=Mug
# C: the cart cleared (cart_clear), no purchase: the views stay
seed old-C cart_cleared=ms:now-2h c:MUG cart at=now-3h name=Mug
seed old-C v:MUG view at=now-3h name=Mug
page old-A => shown count=0
    banner like aria-label="Recently viewed"
    names Hat
wait  HEXISTS {{meta old-A}} v:MUG => 0
check HEXISTS {{meta old-A}} v:CUP => 0
check HEXISTS {{meta old-A}} c:MUG => 0
check HEXISTS {{meta old-A}} v:HAT => 1
page old-A => shown
    names Hat
page old-B => shown
    names Mug
page old-C => shown
    names Mug



=== TEST 4: purchased: cart and browse reminders quiet for the delay
--- config
retarget on;
retarget_delay 30m;
retarget_frequency 10 1d pages=100;
location / { }
location /retarget/ { retarget_control; }
--- steps
seed q-A purchased=now-10m v:HAT view at=now-3h name=Hat
seed q-B purchased=now-10m cart_updated=now-5m c:CAP cart at=now-5m name=Cap
page q-A => purchased
page q-B => purchased
seed q-A purchased=now-29m
page q-A => purchased
seed q-A purchased=now-31m
page q-A => shown
    names Hat
# a cart filled after the purchase, idle past the delay: its reminder
seed q-B purchased=now-2h cart_updated=now-1h c:CAP cart at=now-1h name=Cap
page q-B => shown count=1
    names Cap
# a cart not changed since the purchase: bought, never a reminder
seed q-B purchased=now-2h cart_updated=now-3h c:CAP cart at=now-3h name=Cap
page q-B => purchased
counters suppressed:timing=0



=== TEST 5: retarget_cart_lifetime: an older cart is viewed products
--- config
retarget on;
retarget_cart_lifetime 1d;
retarget_frequency 10 1d pages=100;
location / { }
location /retarget/ { retarget_control; }
location /keep/ { retarget_cart_lifetime off; }
# a thank-you page: reads the cart for its value, never reminds of it
location /thanks/ { retarget_delay 3650d; retarget_window 3651d; }
--- user_files
>>> page.html
<html><head><title>Shop</title></head><body><h1>Shop</h1><p>content</p></body></html>
>>> keep/page.html
<html><head><title>Shop</title></head><body><h1>Shop</h1><p>content</p></body></html>
>>> thanks/page.html
<html><head><title>Shop</title></head><body><h1>Shop</h1><p>content</p></body></html>
--- steps
# A: changed 2 days ago, the shop kept it 1 day: the browse reminder
# ($retarget_cart_count and _total still count the module's copy)
seed life-A cart_updated=now-2d c:MUG cart at=now-2d name=Mug price=12.00 qty=2
# B: changed 20 hours ago: still the shop's cart
seed life-B cart_updated=now-20h c:MUG cart at=now-20h name=Mug price=12.00 qty=2
# C: with views, one of the same sku: each product once, newest first
seed life-C cart_updated=now-2d c:MUG cart at=now-2d name=Mug
seed life-C v:HAT view at=now-3d name=Hat v:MUG view at=now-4d name=Mug
seed life-C v:PEN view at=now-1d name=Pen
# D: bought after its last change: nothing of it
seed life-D purchased=now-1d cart_updated=now-2d c:MUG cart at=now-2d name=Mug
# G: the same, and views: of the bought product too, which is left out
seed life-G purchased=now-1d cart_updated=now-2d c:MUG cart at=now-2d name=Mug
seed life-G v:MUG view at=now-3d name=Mug v:HAT view at=now-3d name=Hat
# E: older than the window (7d): too late either way
seed life-E cart_updated=now-8d c:MUG cart at=now-8d name=Mug
# F: no cart_updated: the newest line's time
seed life-F c:MUG cart at=now-2d name=Mug c:CUP cart at=now-3d name=Cup
page life-A => shown count=2 total=24.00
    banner like aria-label="Recently viewed"
    banner unlike aria-label="Your cart"
    names Mug
page life-B => shown count=2 total=24.00
    banner like aria-label="Your cart"
    names Mug
page life-C => shown count=1
    names Pen Mug Hat
page life-D => no_cart
page life-G => shown count=1
    names Hat
page life-E => too_late
page life-F => shown count=2
    names Mug Cup
# the lines stay the visitor's: the lifetime is how this location reads them
sleep 0.3
check HEXISTS {{meta life-A}} c:MUG => 1
# a location without the limit: the cart reminder
page life-A uri=/keep/page.html => shown count=2
    banner like aria-label="Your cart"
# the thank-you page has the cart's total, shows nothing
page life-B uri=/thanks/page.html => too_soon count=2 total=24.00
page life-A uri=/thanks/page.html => too_soon count=2 total=24.00



=== TEST 6: retarget_window defaults to 7 days
--- config
retarget on;
retarget_frequency 10 1d pages=100;
location / { }
location /retarget/ { retarget_control; }
--- steps
seed win-A cart_updated=now-7d+60s c:MUG cart at=now-7d+60s name=Mug
seed win-B cart_updated=now-7d-60s c:MUG cart at=now-7d-60s name=Mug
seed win-C v:HAT view at=now-7d+60s name=Hat
seed win-D v:HAT view at=now-7d-60s name=Hat
page win-A => shown
page win-B => too_late
page win-C => shown
page win-D => too_late



=== TEST 7: nginx -t: retarget_cart_lifetime not a time
--- config
retarget_cart_lifetime soon;
--- must_die
--- error_log eval
qr/\[emerg\] invalid time "soon" in "retarget_cart_lifetime": a time of 1s or more, or "off" in \S+nginx\.conf:\d+/



=== TEST 8: nginx -t: retarget_cart_lifetime 0
--- config
retarget_cart_lifetime 0;
--- must_die
--- error_log eval
qr/\[emerg\] invalid time "0" in "retarget_cart_lifetime"/



=== TEST 9: nginx -t: retarget_cart_lifetime twice
--- config
retarget_cart_lifetime 1d;
retarget_cart_lifetime 2d;
--- must_die
--- error_log eval
qr/\[emerg\] "retarget_cart_lifetime" directive is duplicate/
