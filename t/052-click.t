# The reminder's endpoints: "click?v=VARIANT&to=PATH" counts a click and
# sends the visitor on to a same-site path (every open-redirect trick is a
# 400); "dismiss" (POST) stores when the visitor dismissed the reminder,
# waiting for Redis, then sends the visitor back.
#
# One block per case, each against a fresh nginx (the server below) and an
# empty Redis, after the worker's link is up (--- link_up).  The trick and
# same-site tables send each request twice (--- visitors: new click): as a
# new visitor and as the returning visitor {{vid click}}.  A trick's block
# checks after nginx has exited that nothing was counted or stored (the
# workers flush their counters as they exit).  The sequences use --- steps
# (Test::Retarget::Campaign): "redirect 302 /x" is the status, the exact
# Location, Cache-Control: no-store only, and no Set-Cookie; "settle"
# waits for the counters' flush, once a second.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis qw(vid);
use Test::Retarget::Campaign ();

use_redis();

# the visitor ids of {{vid NAME}}, {{cookie NAME}}, "as NAME"
$Test::Retarget::Campaign::VisitorIds = \&vid;

default_http_config(qq{
    retarget_secret $Test::Retarget::Campaign::SECRET;
    retarget_redis 127.0.0.1:\$TEST_NGINX_REDIS_PORT;
});

default_config(q{
    retarget on;
    retarget_variant A 1 builtin;
    retarget_variant B 1 builtin;
    location / { }
    location /retarget/ { retarget_control; }
});

default_section(
    user_files    => ">>> index.html\n<html><body><h1>Shop</h1></body></html>\n",
    link_up       => 1,
    no_cookie_jar => 1,
);

run_tests();

__DATA__

=== TEST 1: click: to='//evil.com' is a 400
--- request
GET /retarget/click?v=A&to=//evil.com
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 2: click: to='//evil.com/x?y=1' is a 400
--- request
GET /retarget/click?v=A&to=//evil.com/x?y=1
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 3: click: to='/\evil.com' is a 400
--- request
GET /retarget/click?v=A&to=/\evil.com
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 4: click: to='/\/evil.com' is a 400
--- request
GET /retarget/click?v=A&to=/\/evil.com
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 5: click: to='%2F%2Fevil.com' is a 400
--- request
GET /retarget/click?v=A&to=%2F%2Fevil.com
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 6: click: to='%2f%2fevil.com' is a 400
--- request
GET /retarget/click?v=A&to=%2f%2fevil.com
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 7: click: to='/%2Fevil.com' is a 400
--- request
GET /retarget/click?v=A&to=/%2Fevil.com
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 8: click: to='%2F/evil.com' is a 400
--- request
GET /retarget/click?v=A&to=%2F/evil.com
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 9: click: to='%5C' is a 400
--- request
GET /retarget/click?v=A&to=%5C
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 10: click: to='%5C%5Cevil.com' is a 400
--- request
GET /retarget/click?v=A&to=%5C%5Cevil.com
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 11: click: to='/%5Cevil.com' is a 400
--- request
GET /retarget/click?v=A&to=/%5Cevil.com
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 12: click: to='/%5C/evil.com' is a 400
--- request
GET /retarget/click?v=A&to=/%5C/evil.com
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 13: click: to='/a%5Cb' is a 400
--- request
GET /retarget/click?v=A&to=/a%5Cb
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 14: click: to='https://evil.com' is a 400
--- request
GET /retarget/click?v=A&to=https://evil.com
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 15: click: to='https:%2F%2Fevil.com' is a 400
--- request
GET /retarget/click?v=A&to=https:%2F%2Fevil.com
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 16: click: to='http:evil.com' is a 400
--- request
GET /retarget/click?v=A&to=http:evil.com
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 17: click: to='HtTpS:' is a 400
--- request
GET /retarget/click?v=A&to=HtTpS:
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 18: click: to='HtTpS://evil.com' is a 400
--- request
GET /retarget/click?v=A&to=HtTpS://evil.com
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 19: click: to='%68ttps://evil.com' is a 400
--- request
GET /retarget/click?v=A&to=%68ttps://evil.com
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 20: click: to='javascript:alert(1)' is a 400
--- request
GET /retarget/click?v=A&to=javascript:alert(1)
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 21: click: to='JavaScript%3Aalert(1)' is a 400
--- request
GET /retarget/click?v=A&to=JavaScript%3Aalert(1)
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 22: click: to='data:text/html,x' is a 400
--- request
GET /retarget/click?v=A&to=data:text/html,x
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 23: click: to='evil.com' is a 400
--- request
GET /retarget/click?v=A&to=evil.com
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 24: click: to='%20//evil.com' is a 400
--- request
GET /retarget/click?v=A&to=%20//evil.com
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 25: click: to='%20/x' is a 400
--- request
GET /retarget/click?v=A&to=%20/x
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 26: click: to='/%0d%0aSet-Cookie:%20x=1' is a 400
--- request
GET /retarget/click?v=A&to=/%0d%0aSet-Cookie:%20x=1
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 27: click: to='/%0D%0ALocation:%20http://evil.com' is a 400
--- request
GET /retarget/click?v=A&to=/%0D%0ALocation:%20http://evil.com
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 28: click: to='/a%0ab' is a 400
--- request
GET /retarget/click?v=A&to=/a%0ab
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 29: click: to='/a%0db' is a 400
--- request
GET /retarget/click?v=A&to=/a%0db
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 30: click: to='%09//evil.com' is a 400
--- request
GET /retarget/click?v=A&to=%09//evil.com
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 31: click: to='/%09/evil.com' is a 400
--- request
GET /retarget/click?v=A&to=/%09/evil.com
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 32: click: to='/a%09b' is a 400
--- request
GET /retarget/click?v=A&to=/a%09b
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 33: click: to='/a%00b' is a 400
--- request
GET /retarget/click?v=A&to=/a%00b
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 34: click: to='%00//evil.com' is a 400
--- request
GET /retarget/click?v=A&to=%00//evil.com
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 35: click: to='/%7F' is a 400
--- request
GET /retarget/click?v=A&to=/%7F
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 36: click: to='/a%' is a 400
--- request
GET /retarget/click?v=A&to=/a%
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 37: click: to='/a%2' is a 400
--- request
GET /retarget/click?v=A&to=/a%2
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 38: click: to='/a%zz' is a 400
--- request
GET /retarget/click?v=A&to=/a%zz
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 39: click: to='/%%2F%2Fevil.com' is a 400
--- request
GET /retarget/click?v=A&to=/%%2F%2Fevil.com
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 40: click: to='/%2%2Fevil.com' is a 400
--- request
GET /retarget/click?v=A&to=/%2%2Fevil.com
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 41: click: to='' is a 400
--- request
GET /retarget/click?v=A&to=
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 42: click: to=/aaa...(2049 bytes) is a 400
--- request eval
"GET /retarget/click?v=A&to=/" . ('a' x 2048)
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 43: click: to=/%61%61%61...(2101 raw bytes, 701 decoded) is a 400
--- request eval
"GET /retarget/click?v=A&to=/" . ('%61' x 700)
--- visitors: new click
--- error_code: 400
--- response_headers
!Location
!Set-Cookie
--- response_body_like: 400 Bad Request
--- response_body_unlike: (?i)evil|alert|script|Set-Cookie|aaaa
--- redis_check_after_exit eval
[ ['HGETALL rt:stats:{{today}}', []], ['KEYS *{*', []] ]



=== TEST 44: click: no "to", even with a Referer of this site, or HEAD with a trick: 400
--- steps
GET /retarget/click?v=A&
    status 400
    no header Location
GET /retarget/click?v=A& header="Referer: http://localhost/cart"
    status 400
HEAD /retarget/click?v=A&to=https://evil.com
    status 400
# nothing was counted, nothing was stored
settle
check HGETALL rt:stats:{{today}} => []
check KEYS *{* => []



=== TEST 45: click: to='/product/mug.html' is a 302 to /product/mug.html
--- request
GET /retarget/click?v=A&to=/product/mug.html
--- visitors: new click
--- error_code: 302
--- response_headers
=Location: http://localhost:$TEST_NGINX_SERVER_PORT/product/mug.html
=Cache-Control: no-store
!Set-Cookie



=== TEST 46: click: to='/' is a 302 to /
--- request
GET /retarget/click?v=A&to=/
--- visitors: new click
--- error_code: 302
--- response_headers
=Location: http://localhost:$TEST_NGINX_SERVER_PORT/
=Cache-Control: no-store
!Set-Cookie



=== TEST 47: click: to='%2Fsearch%3Fq%3Dred%2Bmug%26page%3D2%23results' is a 302 to /search?q=red+mug&page=2#results
--- request
GET /retarget/click?v=A&to=%2Fsearch%3Fq%3Dred%2Bmug%26page%3D2%23results
--- visitors: new click
--- error_code: 302
--- response_headers
=Location: http://localhost:$TEST_NGINX_SERVER_PORT/search?q=red+mug&page=2#results
=Cache-Control: no-store
!Set-Cookie



=== TEST 48: click: to='/p/mug%3Fx=1%26y=2%23reviews' is a 302 to /p/mug?x=1&y=2#reviews
--- request
GET /retarget/click?v=A&to=/p/mug%3Fx=1%26y=2%23reviews
--- visitors: new click
--- error_code: 302
--- response_headers
=Location: http://localhost:$TEST_NGINX_SERVER_PORT/p/mug?x=1&y=2#reviews
=Cache-Control: no-store
!Set-Cookie



=== TEST 49: click: to='/p?x=1' is a 302 to /p?x=1
--- request
GET /retarget/click?v=A&to=/p?x=1
--- visitors: new click
--- error_code: 302
--- response_headers
=Location: http://localhost:$TEST_NGINX_SERVER_PORT/p?x=1
=Cache-Control: no-store
!Set-Cookie



=== TEST 50: click: to='/a%252Fb' is a 302 to /a%2Fb
--- request
GET /retarget/click?v=A&to=/a%252Fb
--- visitors: new click
--- error_code: 302
--- response_headers
=Location: http://localhost:$TEST_NGINX_SERVER_PORT/a%2Fb
=Cache-Control: no-store
!Set-Cookie



=== TEST 51: click: to='/%252F%252Fevil.com' is a 302 to /%2F%2Fevil.com
--- request
GET /retarget/click?v=A&to=/%252F%252Fevil.com
--- visitors: new click
--- error_code: 302
--- response_headers
=Location: http://localhost:$TEST_NGINX_SERVER_PORT/%2F%2Fevil.com
=Cache-Control: no-store
!Set-Cookie



=== TEST 52: click: to='/@evil.com' is a 302 to /@evil.com
--- request
GET /retarget/click?v=A&to=/@evil.com
--- visitors: new click
--- error_code: 302
--- response_headers
=Location: http://localhost:$TEST_NGINX_SERVER_PORT/@evil.com
=Cache-Control: no-store
!Set-Cookie



=== TEST 53: click: to='/caf%C3%A9' is a 302 to /caf%C3%A9
--- request
GET /retarget/click?v=A&to=/caf%C3%A9
--- visitors: new click
--- error_code: 302
--- response_headers
=Location: http://localhost:$TEST_NGINX_SERVER_PORT/caf%C3%A9
=Cache-Control: no-store
!Set-Cookie



=== TEST 54: click: to='/a%20b' is a 302 to /a%20b
--- request
GET /retarget/click?v=A&to=/a%20b
--- visitors: new click
--- error_code: 302
--- response_headers
=Location: http://localhost:$TEST_NGINX_SERVER_PORT/a%20b
=Cache-Control: no-store
!Set-Cookie



=== TEST 55: click: to='/q%3Fs%3D%22%3Cx%3E%22' is a 302 to /q?s=%22%3Cx%3E%22
--- request
GET /retarget/click?v=A&to=/q%3Fs%3D%22%3Cx%3E%22
--- visitors: new click
--- error_code: 302
--- response_headers
=Location: http://localhost:$TEST_NGINX_SERVER_PORT/q?s=%22%3Cx%3E%22
=Cache-Control: no-store
!Set-Cookie



=== TEST 56: click: to=/aaa...(2048 bytes) is a 302 to exactly that path
--- request eval
"GET /retarget/click?v=A&to=/" . ('a' x 2047)
--- visitors: new click
--- error_code: 302
--- response_headers eval
[ ("=Location: http://localhost:$ENV{TEST_NGINX_SERVER_PORT}/" . ('a' x 2047)
   . "\n=Cache-Control: no-store\n!Set-Cookie") x 2 ]



=== TEST 57: click: HEAD is redirected too, POST is a 405; stale or forged variants still go where they point
--- steps
HEAD /retarget/click?v=A&to=/x
    redirect 302 /x
POST /retarget/click?v=A&to=/x
    status 405
# a stale or forged link still takes the visitor where it points
GET /retarget/click?v=Z&to=/x
    redirect 302 /x
GET /retarget/click?v=&to=/x
    redirect 302 /x
GET /retarget/click?v=%41&to=/x
    redirect 302 /x
GET /retarget/click?v=%3Cb%3E&to=/x
    redirect 302 /x
GET /retarget/click?v=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&to=/x
    redirect 302 /x
GET /retarget/click?v=holdout&to=/x
    redirect 302 /x
GET /retarget/click?v=A%00&to=/x
    redirect 302 /x
GET /retarget/click?v=a;b&to=/x
    redirect 302 /x
# no v, v after to
GET /retarget/click?to=/x
    redirect 302 /x
GET /retarget/click?to=/x&v=B
    redirect 302 /x



=== TEST 58: click: counted per variant, only for a configured variant
--- steps
GET /retarget/click?v=A&to=/x repeat=3
GET /retarget/click?v=B&to=/x
GET /retarget/click?v=Z&to=/x
GET /retarget/click?v=&to=/x
GET /retarget/click?v=%41&to=/x
GET /retarget/click?v=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&to=/x
GET /retarget/click?v=holdout&to=/x
GET /retarget/click?v=banner&to=/x
GET /retarget/click?to=/x
HEAD /retarget/click?v=A&to=/x
# refused: not a click either
GET /retarget/click?v=A&to=//evil.com
# a browser's guess (speculation rules), not a visitor's click
GET /retarget/click?v=A&to=/x header="Sec-Purpose: prefetch"
    status 302
GET /retarget/click?v=A&to=/x header="Purpose: prefetch"
settle
# clicks:A 3: not the HEAD, not the 400, not the prefetches
check HGET rt:stats:{{today}} clicks:A => 3
check HGET rt:stats:{{today}} clicks:B => 1
fields rt:stats:{{today}} /^clicks:/ => [clicks:A clicks:B]
# new visitors: nothing stored
check KEYS *{* => []



=== TEST 59: click: a returning visitor's click is stored in meta
--- steps
GET /retarget/click?v=B&to=/x as click
    redirect 302 /x
wait  HGET {{meta click}} clicked => defined
check HGET {{meta click}} clicked => /^\d+ B$/
check HGET {{meta click}} clicked => first-word ~clock/10
check TTL {{meta click}} => >=1 <=2592000
# only the meta hash
check KEYS *{* => [{{meta click}}]
# an existing hash keeps its fields; the next click replaces "clicked"
redis HSET {{meta click}} first_seen 1
GET /retarget/click?v=A&to=/y as click
wait  HGET {{meta click}} clicked => / A$/
check HGET {{meta click}} first_seen => 1
settle
check HGET rt:stats:{{today}} clicks:A => 1
check HGET rt:stats:{{today}} clicks:B => 1



=== TEST 60: click: nothing stored for a new, unknown or forged visitor
--- steps
# a variant of no configuration
GET /retarget/click?v=Z&to=/x as unknown
GET /retarget/click?v=A&to=/x cookie=rt_vid={{vid forged}}.forgedsignature0000000
# new: no cookie, none issued
GET /retarget/click?v=A&to=/x
HEAD /retarget/click?v=A&to=/x as unknown
settle
check KEYS *{* => []
# the forged and the new one
check HGET rt:stats:{{today}} clicks:A => 2



=== TEST 61: click: an opted-out or GPC visitor: redirected, nothing else
--- steps
GET /retarget/click?v=A&to=/x as optout consent=out
    redirect 302 /x
GET /retarget/click?v=A&to=/x consent=out
    redirect 302 /x
GET /retarget/click?v=A&to=/x as gpc header="Sec-GPC: 1"
    redirect 302 /x
GET /retarget/click?v=A&to=/x header="Sec-GPC: 1"
    redirect 302 /x
settle
check KEYS *{* => []
check HGETALL rt:stats:{{today}} => []



=== TEST 62: click: the redirect does not wait for Redis
--- steps
redis CLIENT PAUSE 1000 WRITE
GET /retarget/click?v=A&to=/x as click
    redirect 302 /x
    took < 0.5
# stored once Redis is back, and counted
wait HGET {{meta click}} clicked => defined
settle
check HGET rt:stats:{{today}} clicks:A => 1



=== TEST 63: dismiss: stored before the visitor goes back
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
# a generous timeout: the answer is waited for, and valgrind is slow
retarget_redis_timeout 2s;
--- steps
POST /retarget/dismiss?to=/cart%3Fstep%3D1 as click header="Origin: http://localhost"
    redirect 303 /cart?step=1
# no wait: the 303 came after Redis's reply
check HGET {{meta click}} dismissed => ~clock/10
check TTL {{meta click}} => >=1 <=2592000
check KEYS *{* => [{{meta click}}]
# back to the Referer
POST /retarget/dismiss as referer header="Referer: http://localhost/p/mug.html?x=1"
    redirect 303 /p/mug.html?x=1
check HGET {{meta referer}} dismissed => ~clock/10
settle
check HGET rt:stats:{{today}} dismissals => 2



=== TEST 64: dismiss: a GET or HEAD changes nothing
--- steps
GET /retarget/dismiss?to=/cart as click
    redirect 303 /cart
HEAD /retarget/dismiss?to=/cart as click
    status 303
# nowhere to go back to: the small page
GET /retarget/dismiss as click
    status 200
PUT /retarget/dismiss?to=/cart as click
    status 405
settle
check KEYS *{* => []
check HGETALL rt:stats:{{today}} => []



=== TEST 65: dismiss: refused, new, opted-out or GPC visitors
--- steps
POST /retarget/dismiss?to=//evil.com as click
    status 400
    no header Location
POST /retarget/dismiss?to=/%5Cevil.com as click
    status 400
    no header Location
POST /retarget/dismiss?to=https://evil.com as click
    status 400
    no header Location
POST /retarget/dismiss?to=/a%0d%0ab as click
    status 400
    no header Location
POST /retarget/dismiss?to=/a% as click
    status 400
    no header Location
POST /retarget/dismiss?to= as click
    status 400
    no header Location
# new visitor, forged cookie, opted out, GPC: sent back, nothing stored
POST /retarget/dismiss?to=/x
    redirect 303 /x
POST /retarget/dismiss?to=/x cookie=rt_vid={{vid forged}}.forgedsignature0000000
    redirect 303 /x
POST /retarget/dismiss?to=/x as click consent=out
    redirect 303 /x
POST /retarget/dismiss?to=/x as click header="Sec-GPC: 1"
    redirect 303 /x
settle
check KEYS *{* => []
check HGETALL rt:stats:{{today}} => []



=== TEST 66: dismiss: Redis too slow: back after retarget_redis_timeout
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
retarget_redis_timeout 300ms;
--- steps
redis CLIENT PAUSE 1500 WRITE
POST /retarget/dismiss?to=/x as click header="Origin: http://localhost"
    redirect 303 /x
    took >= 0.25 < 1.2
# the write was sent: it lands once Redis is back, uncounted
wait HGET {{meta click}} dismissed => defined
settle
# not counted: not known to be stored
check HEXISTS rt:stats:{{today}} dismissals => 0



=== TEST 67: dismiss and click: Redis down: the visitor goes on
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
# no Redis at that address: the link never comes up
retarget_redis 127.0.0.1:1;
--- link_up: 0
--- steps
POST /retarget/dismiss?to=/x as click header="Origin: http://localhost"
    redirect 303 /x
GET /retarget/click?v=A&to=/x as click
    redirect 302 /x
# at once
elapsed < 1
