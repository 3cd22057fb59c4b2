# The visitor endpoints: where they send the visitor back, and what they
# refuse.
use lib 't/lib';
use Test::Retarget;

default_http_config(q{
    retarget_secret 0123456789abcdef0123456789abcdef;
});

default_config(q{
    retarget on;
    location / { return 200 "page\n"; }
    location /retarget/ { retarget_control; }
});

our @BAD = (
    '//evil.example/x', '%2F%2Fevil.example', '/\\evil.example', '/%5Cevil.example',
    '%5C%5Cevil.example', 'https://evil.example/', 'http:evil.example',
    'javascript:alert(1)', '/%0D%0ASet-Cookie:%20x=1', '/a%0Ab', '/a%09b',
    '/a%00b', '/%7F', 'evil.example', '', '%2f%2fevil.example',
    # a "%" not followed by two hex digits: refused, not dropped
    '/a%', '/a%2', '/a%zz', '/%%2F%2Fevil.example', '/%2%2Fevil.example',
    '/' . ('a' x 2048),
);

run_tests();

__DATA__

=== TEST 1: "to" with a same-site path: 303 there, no visitor cookie
--- request
POST /retarget/ack?to=/product/mug.html%3Fx%3D1%26y%3D2
--- more_headers
Origin: http://localhost
--- error_code: 303
--- response_headers_like
Location: ^http://localhost(:\d+)?/product/mug.html\?x=1&y=2$
Set-Cookie: ^rt_vid_consent=ack\.[A-Za-z0-9_-]{22};
--- response_headers
Cache-Control: no-store

=== TEST 2: no visitor cookie is issued by any endpoint, whatever the answer; a GET changes nothing
--- request eval
["GET /retarget/ack", "GET /retarget/nope", "PUT /retarget/ack", "GET /retarget/ack?to=//x"]
--- error_code eval
[200, 404, 405, 400]
--- response_headers eval
["!Set-Cookie", "!Set-Cookie", "!Set-Cookie", "!Set-Cookie"]
--- response_body_like eval
[qr{<form method="post" action="/retarget/ack">}, undef, undef, undef]

=== TEST 3: every open-redirect trick is a 400 and changes nothing
--- request eval
[map { "POST /retarget/optout?to=$_" } @main::BAD]
--- error_code eval
[map { 400 } @main::BAD]
--- response_headers eval
[map { "!Set-Cookie" } @main::BAD]
--- no_error_log
[error]

=== TEST 4: the Referer of this site is where the visitor goes back to
--- request
POST /retarget/ack
--- more_headers
Host: localhost:1234
Referer: http://localhost:1234/product/mug.html?ref=a
--- error_code: 303
--- response_headers_like
Location: /product/mug.html\?ref=a$

=== TEST 5: another site's Referer, or none: a small page, no redirect
--- request eval
["POST /retarget/ack", "POST /retarget/ack", "POST /retarget/ack"]
--- more_headers eval
["Referer: http://evil.example/x\nOrigin: http://localhost",
 "Referer: http://localhost.evil.example/x\nOrigin: http://localhost",
 "Origin: http://localhost"]
--- error_code eval
[200, 200, 200]
--- response_headers eval
["!Location", "!Location", "!Location"]
--- response_body_like eval
[qr/Your choice is saved/, qr/Your choice is saved/, qr/Your choice is saved/]

=== TEST 6: a Referer whose path is not same-site, or whose "port" is not one, falls back to the page
--- request eval
["POST /retarget/ack", "POST /retarget/ack"]
--- more_headers eval
["Referer: http://localhost//evil.example/\nOrigin: http://localhost",
 "Referer: http://localhost:\@evil.example/x\nOrigin: http://localhost"]
--- error_code eval
[200, 200]
--- response_headers eval
["!Location", "!Location"]

=== TEST 7: HEAD and a POST body are fine
--- request eval
["HEAD /retarget/ack", "POST /retarget/optin?to=/\nx=y&z"]
--- more_headers
Origin: http://localhost
--- error_code eval
[200, 303]

=== TEST 8: the saved page is never cached and gets no notice
--- request
GET /retarget/ack
--- response_headers
Cache-Control: no-store
Content-Type: text/html
--- response_body_unlike: rt-notice

=== TEST 9: the path is decoded once; Location is plain ASCII and names the same URL
--- request eval
["POST /retarget/ack?to=/caf%C3%A9%20x%3Fq%3D%22%3Cb%3E%22",
 "POST /retarget/ack?to=/a%252Fb",
 "POST /retarget/ack?to=/" . ("a" x 2047)]
--- more_headers
Origin: http://localhost
--- error_code eval
[303, 303, 303]
--- response_headers_like eval
["Location: ^http://localhost(:\\d+)?/caf%C3%A9%20x\\?q=%22%3Cb%3E%22\$",
 "Location: ^http://localhost(:\\d+)?/a%2Fb\$",
 "Location: ^http://localhost(:\\d+)?/a{2047}\$"]

=== TEST 10: dismiss and click live here too; click refuses what ack refuses, and a missing "to"
--- request eval
["GET /retarget/click?v=banner&to=/p", "GET /retarget/click?v=banner",
 "GET /retarget/click?v=banner&to=//evil.example", "POST /retarget/click?to=/p",
 "POST /retarget/dismiss?to=/p"]
--- error_code eval
[302, 400, 400, 405, 303]
--- response_headers eval
["Cache-Control: no-store\n!Set-Cookie", "!Location", "!Location", "!Location",
 "Cache-Control: no-store\n!Set-Cookie"]
--- response_headers_like eval
["Location: ^http://localhost(:\\d+)?/p\$", undef, undef, undef,
 "Location: ^http://localhost(:\\d+)?/p\$"]
