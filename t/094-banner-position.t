# retarget_banner_position: nginx -t refuses anything but the four places
# and an offset of digits with px, rem or em (the value lands in the
# page's CSS); the place reaches the notice's markup (data-rt-side), which
# lines up with the banner.  The browser measurements are in
# t/094-browser-overlay.t.
use lib 't/lib';
use Test::Retarget;

run_tests();

__DATA__

=== TEST 1: an unknown position
--- config
retarget_banner_position middle;
--- must_die
--- error_log eval
qr/\[emerg\] invalid position "middle" in "retarget_banner_position", it must be "bottom-right", "bottom-left", "bottom" or "top" in \S+nginx\.conf:\d+/

=== TEST 2: an offset that is CSS but not a length of digits
--- config
retarget_banner_position top offset=calc(1px+1px);
--- must_die
--- error_log eval
qr/\[emerg\] invalid offset "calc\(1px\+1px\)" in "retarget_banner_position", it must be a number of at most 4 digits and 2 decimals, with "px" \(the default\), "rem" or "em" in \S+nginx\.conf:\d+/

=== TEST 3: an offset that would end the CSS declaration
--- config
retarget_banner_position top "offset=10px;}html{display:none";
--- must_die
--- error_log eval
qr/\[emerg\] invalid offset "10px;\}html\{display:none" in "retarget_banner_position"/

=== TEST 4: a negative offset
--- config
retarget_banner_position bottom offset=-4px;
--- must_die
--- error_log eval
qr/\[emerg\] invalid offset "-4px"/

=== TEST 5: an offset with an exponent, too many digits, decimals or an unknown unit
--- config
location /a { retarget_banner_position top offset=1e3px; }
--- must_die
--- error_log eval
qr/\[emerg\] invalid offset "1e3px"/

=== TEST 6: five digits
--- config
retarget_banner_position top offset=10000px;
--- must_die
--- error_log eval
qr/\[emerg\] invalid offset "10000px"/

=== TEST 7: three decimals
--- config
retarget_banner_position top offset=1.125rem;
--- must_die
--- error_log eval
qr/\[emerg\] invalid offset "1\.125rem"/

=== TEST 8: a unit of another kind
--- config
retarget_banner_position top offset=10vh;
--- must_die
--- error_log eval
qr/\[emerg\] invalid offset "10vh"/

=== TEST 9: a parameter that is not offset=
--- config
retarget_banner_position top size=10px;
--- must_die
--- error_log eval
qr/\[emerg\] invalid parameter "size=10px" in "retarget_banner_position", only "offset=" is allowed/

=== TEST 10: twice at one level
--- config
retarget_banner_position top;
retarget_banner_position bottom;
--- must_die
--- error_log eval
qr/\[emerg\] "retarget_banner_position" directive is duplicate in \S+nginx\.conf:\d+/

=== TEST 11: the notice keeps to the default side of the banner
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
--- config
retarget on;
--- user_files
>>> index.html
<html><body><h1>Shop</h1></body></html>
--- request
GET /index.html
--- more_headers
Accept: text/html
--- response_body_like: <div class="rt-notice" role="region" aria-label="Privacy notice" data-rt-side="bottom-right">

=== TEST 12: valid offsets load; the notice follows the location's position
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_banner_position bottom-left offset=12;
--- config
retarget on;
location /t/ { retarget_banner_position top offset=4.5rem; }
location /b/ { retarget_banner_position bottom offset=2.25em; }
location /l/ { }
--- user_files
>>> t/index.html
<html><body><h1>Shop</h1></body></html>
>>> b/index.html
<html><body><h1>Shop</h1></body></html>
>>> l/index.html
<html><body><h1>Shop</h1></body></html>
--- request eval
["GET /t/index.html", "GET /b/index.html", "GET /l/index.html"]
--- more_headers
Accept: text/html
--- response_body_like eval
[qr/data-rt-side="top">/, qr/data-rt-side="bottom">/, qr/data-rt-side="bottom-left">/]
