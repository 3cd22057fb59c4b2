# Range requests to a page assembled by the slice module: the module does
# not inject into them, and nginx's 206 of the asked bytes stands (never
# a 200 of the wrong slices); without Range the page is whole, with the
# snippet.
use lib 't/lib';
use Test::Retarget;

# A fixed notice (t/data/n.html: "[N]") keeps the expected bodies short.
default_http_config(q{
    retarget_secret 0123456789abcdef0123456789abcdef;
    retarget_notice $TEST_NGINX_SERVROOT/../data/n.html;
});

# 16-byte slices of a 70-byte page, fetched from a static origin that
# answers ranges itself.
default_config(q{
    retarget on;
    location / {
        slice 16;
        proxy_set_header Range $slice_range;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/origin/;
    }
    location /origin/ { retarget off; alias $TEST_NGINX_HTML_DIR/; }
});

run_tests();

__DATA__

=== TEST 1: no Range: the whole page, in order, with the snippet
--- user_files
>>> p.html
<html><body><p>0123456789abcdefghijklmnopqrstuvwxyz</p></body></html>
--- request
GET /p.html
--- response_body_like
^<html><body><p>0123456789abcdefghijklmnopqrstuvwxyz</p>(?:\[N\])?</body></html>\n(?:\[N\])?$
--- response_headers
!Content-Range

=== TEST 2: a range inside a later slice: 206 with the asked bytes
--- user_files
>>> p.html
<html><body><p>0123456789abcdefghijklmnopqrstuvwxyz</p></body></html>
--- request
GET /p.html
--- more_headers
Range: bytes=20-29
--- error_code: 206
--- response_body chomp
56789abcde
--- response_headers
Content-Range: bytes 20-29/70
Content-Length: 10
--- error_log
ranged slice response left untouched

=== TEST 3: a range across slices, from the first one
--- user_files
>>> p.html
<html><body><p>0123456789abcdefghijklmnopqrstuvwxyz</p></body></html>
--- request
GET /p.html
--- more_headers
Range: bytes=3-40
--- error_code: 206
--- response_body chomp
ml><body><p>0123456789abcdefghijklmnop
--- response_headers
Content-Range: bytes 3-40/70

=== TEST 4: a range to the end, and a suffix range
--- user_files
>>> p.html
<html><body><p>0123456789abcdefghijklmnopqrstuvwxyz</p></body></html>
--- request eval
["GET /p.html", "GET /p.html"]
--- more_headers eval
["Range: bytes=50-", "Range: bytes=-9"]
--- error_code: 206
--- response_body eval
["z</p></body></html>\n", "></html>\n"]
--- response_headers eval
["Content-Range: bytes 50-69/70", "Content-Range: bytes 61-69/70"]

=== TEST 5: a page that is not sliced still ignores Range and is injected
--- config
retarget on;
location / { }
--- user_files
>>> p.html
<html><body><p>0123456789abcdefghijklmnopqrstuvwxyz</p></body></html>
--- request
GET /p.html
--- more_headers
Range: bytes=20-29
--- response_body
<html><body><p>0123456789abcdefghijklmnopqrstuvwxyz</p>[N]</body></html>
--- response_headers
!Content-Range
