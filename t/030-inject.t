# The injection filter: where the snippet goes, which responses get it,
# and what happens to the response headers.
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis ();

# A fixed notice (t/data/n.html: "[N]") keeps the expected bodies short.
default_http_config(q{
    retarget_secret 0123456789abcdef0123456789abcdef;
    retarget_notice $TEST_NGINX_SERVROOT/../data/n.html;
});

default_config(q{
    retarget on;
    location / { }
});

run_tests();

__DATA__

=== TEST 1: before </body>, with the headers of a personalized page
--- user_files
>>> p.html
<html><body><p>hi</p></body></html>
--- request
GET /p.html
--- response_body
<html><body><p>hi</p>[N]</body></html>
--- response_headers
Cache-Control: private
!Content-Length
!Last-Modified
!Accept-Ranges
--- response_headers_like
ETag: ^W/"
Content-Type: ^text/html

=== TEST 2: upper and mixed case tags, only the first one
--- user_files
>>> a.html
<HTML><BODY>a</BODY></HTML>
>>> b.html
<html><body>b</BoDy ></body></bOdY></html>
--- request eval
["GET /a.html", "GET /b.html"]
--- response_body eval
["<HTML><BODY>a[N]</BODY></HTML>\n", "<html><body>b</BoDy >[N]</body></bOdY></html>\n"]

=== TEST 3: no </body>: at the end; near misses are not the tag
--- user_files
>>> a.html
<p>no body tag</p> </bod </body <body> </bodyx
--- request
GET /a.html
--- response_body chomp
<p>no body tag</p> </bod </body <body> </bodyx
[N]

=== TEST 4: a page that ends inside a partial tag
--- init eval
open my $fh, '>', "$ENV{TEST_NGINX_HTML_DIR}/a.html" or die $!;
print $fh "<p>x</p></bo";
close $fh;
--- request
GET /a.html
--- response_body chomp
<p>x</p></bo[N]

=== TEST 5: other types are untouched, byte for byte
--- user_files
>>> a.txt
<html><body>text</body></html>
>>> a.css
body { color: red } </body>
--- request eval
["GET /a.txt", "GET /a.css"]
--- response_body eval
["<html><body>text</body></html>\n", "body { color: red } </body>\n"]
--- response_headers eval
["Content-Length: 31", "Content-Length: 28"]

=== TEST 6: retarget_types extends the types
--- config
retarget on;
retarget_types text/plain;
location / { }
--- user_files
>>> a.txt
<html><body>text</body></html>
--- request
GET /a.txt
--- response_body
<html><body>text[N]</body></html>

=== TEST 7: non-200 statuses are untouched
--- config
retarget on;
location / { }
location = /e { return 403 "<html><body>no</body></html>"; }
location = /gone { error_page 404 /404.html; }
--- user_files
>>> 404.html
<html><body>missing</body></html>
--- request eval
["GET /e", "GET /gone", "GET /nothing.html"]
--- error_code eval
[403, 404, 404]
--- response_body_unlike eval
[qr/\[N\]/, qr/\[N\]/, qr/\[N\]/]
--- response_body_like eval
[qr/no/, qr/missing/, qr/Not Found/]

=== TEST 8: HEAD gets the headers of the injected page and no body
--- user_files
>>> p.html
<html><body>x</body></html>
--- request
HEAD /p.html
--- response_headers
!Content-Length
Cache-Control: private
--- response_body chomp

=== TEST 9: a Range request gets the whole page with 200
--- user_files
>>> p.html
<html><body>0123456789</body></html>
--- request
GET /p.html
--- more_headers
Range: bytes=0-4
--- error_code: 200
--- response_body
<html><body>0123456789[N]</body></html>
--- response_headers
!Content-Range

=== TEST 10: a conditional navigation never gets a stale 304
--- user_files
>>> p.html
<html><body>x</body></html>
--- request eval
["GET /p.html", "GET /p.html", "GET /p.html"]
--- more_headers eval
["Accept: text/html\r\nIf-Modified-Since: Thu, 31 Dec 2037 23:55:55 GMT",
 "Accept: text/html,*/*\r\nIf-None-Match: *",
 "Accept: image/png\r\nIf-None-Match: *"]
--- no_cookie_jar
--- error_code eval
[200, 200, 304]
--- response_body_like eval
[qr/\[N\]/, qr/\[N\]/, undef]

=== TEST 11: after the notice is dismissed the page is the shop's own, 304 and all
--- user_files
>>> p.html
<html><body>x</body></html>
--- request eval
["GET /p.html", "GET /p.html"]
--- more_headers eval
my $c = "Cookie: " . Test::Retarget::Redis::consent_cookie('ack');
[$c, "$c\r\nIf-None-Match: *"]
--- error_code eval
[200, 304]
--- response_body eval
["<html><body>x</body></html>\n", undef]
--- response_headers eval
["Content-Length: 28", undef]

=== TEST 12: Cache-Control becomes private and keeps what restricts caching
--- config
retarget on;
location / { add_header Cache-Control "public, max-age=60, s-maxage=600, must-revalidate"; }
location /n/ { alias $TEST_NGINX_HTML_DIR/; expires 1h; }
--- user_files
>>> p.html
<html><body>x</body></html>
--- request eval
["GET /p.html", "GET /n/p.html"]
--- response_headers eval
["Cache-Control: private, max-age=60, must-revalidate", "Cache-Control: private, max-age=3600"]

=== TEST 13: retarget off: byte-identical, no header added or removed
--- config
location / { }
--- user_files
>>> p.html
<html><body>x</body></html>
--- request
GET /p.html
--- response_body
<html><body>x</body></html>
--- response_headers
Content-Length: 28
!Set-Cookie
!Cache-Control
--- response_headers_like
ETag: ^"
Last-Modified: GMT
Accept-Ranges: bytes

=== TEST 14: an empty page
--- user_files
>>> e.html
--- request
GET /e.html
--- response_body chomp
--- response_headers
!Cache-Control

=== TEST 15: SSI includes are subrequests: untouched; the page gets one notice
--- config
retarget on;
location / { ssi on; }
--- user_files
>>> main.html
<html><body>A<!--# include virtual="/frag.html" -->B</body></html>
>>> frag.html
<i>frag</body></i>
--- request
GET /main.html
--- response_body
<html><body>A<i>frag</body></i>
B[N]</body></html>

=== TEST 16: addition's after-body subrequest is untouched
--- config
retarget on;
location / { }
location = /p.html { add_after_body /after.html; }
--- user_files
>>> p.html
<html><body>x</body></html>
>>> after.html
<footer>after</body></footer>
--- request
GET /p.html
--- response_body
<html><body>x[N]</body></html>
<footer>after</body></footer>

=== TEST 17: nginx gzip compresses the injected page
--- config
retarget on;
gzip on;
gzip_types text/html;
gzip_min_length 1;
location / { }
--- user_files
>>> p.html
<html><body>compress me</body></html>
--- request
GET /p.html
--- more_headers
Accept-Encoding: gzip
--- response_headers
Content-Encoding: gzip
--- gunzip
--- response_body
<html><body>compress me[N]</body></html>

=== TEST 18: a gzip-encoded upstream passes through untouched, and is counted
--- config
retarget on;
location / { proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT; }
--- backend eval
use IO::Compress::Gzip qw(gzip);
my $html = "<html><body>from upstream</body></html>";
gzip(\$html => \my $gz);
["HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\nContent-Length: " . length($gz) . "\r\nConnection: close\r\n\r\n$gz"]
--- request
GET /p
--- more_headers
Accept-Encoding: gzip
--- response_headers
Content-Encoding: gzip
--- gunzip
--- response_body chomp
<html><body>from upstream</body></html>
--- error_log
"gzip" encoded response left untouched

=== TEST 19: with gunzip on, a gzip upstream is decoded and injected
--- config
retarget on;
location / { gunzip on; proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT; }
--- backend eval
use IO::Compress::Gzip qw(gzip);
my $html = "<html><body>from upstream</body></html>";
gzip(\$html => \my $gz);
["HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\nContent-Length: " . length($gz) . "\r\nConnection: close\r\n\r\n$gz"]
--- request
GET /p
--- response_headers
!Content-Encoding
--- response_body chomp
<html><body>from upstream[N]</body></html>

=== TEST 20: HTTP/2 (h2c, prior knowledge)
--- listen_opts: http2
--- user_files
>>> p.html
<html><body>h2</body></html>
--- curl: --http2-prior-knowledge
--- request
GET /p.html
--- response_body
<html><body>h2[N]</body></html>
--- response_headers_like
set-cookie: ^rt_vid=

=== TEST 21: proxy_cache in front of an upstream: the cached page is personalized per request
--- http_config
retarget_secret 0123456789abcdef0123456789abcdef;
retarget_notice $TEST_NGINX_SERVROOT/../data/n.html;
proxy_cache_path $TEST_NGINX_SERVROOT/cache keys_zone=c:1m;
--- config
retarget on;
location / {
    proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/origin/;
    proxy_cache c;
    proxy_cache_valid 200 1m;
    add_header X-Cache $upstream_cache_status;
}
location /origin/ { retarget off; alias $TEST_NGINX_HTML_DIR/; }
--- user_files
>>> p.html
<html><body>cached</body></html>
--- request eval
["GET /p.html", "GET /p.html", "GET /p.html"]
--- more_headers eval
["", "Cookie: " . Test::Retarget::Redis::consent_cookie('ack'), ""]
--- no_cookie_jar
--- response_headers eval
["X-Cache: MISS", "X-Cache: HIT", "X-Cache: HIT"]
--- response_body eval
["<html><body>cached[N]</body></html>\n", "<html><body>cached</body></html>\n", "<html><body>cached[N]</body></html>\n"]
