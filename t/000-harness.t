# Self-test of t/lib/Test/Retarget.pm against plain nginx features only, so
# that it runs before the module is built.

BEGIN { $ENV{TEST_RETARGET_NO_MODULE} = 1 }

use strict;
use warnings;
use lib 't/lib';
use IO::Socket::INET;
use Test::Retarget;

use_redis();

#--------------------------------------------------------------------------
# Ad-hoc Perl API (before run_tests, which ends with done_testing)
#--------------------------------------------------------------------------

# chunked decoding
{
    my ($body, $err, $done) = Test::Retarget::dechunk("3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n");
    is($body, 'abcde', 'dechunk: body');
    ok(!$err && $done, 'dechunk: complete');
    (undef, $err) = Test::Retarget::dechunk("3\r\nabc\r\n");
    like($err, qr/missing last chunk/, 'dechunk: truncated body is reported');
}

# cookie jar: set, overwrite, delete by Max-Age=0 and by a past Expires
{
    my $jar = Test::Retarget::new_jar();
    Test::Retarget::jar_update($jar, { headers => { 'set-cookie' => [
        'a=1; Path=/', 'b=2; Max-Age=60', 'c=3' ] } });
    Test::Retarget::jar_update($jar, { headers => { 'set-cookie' => [
        'a=9', 'b=; Max-Age=0', 'c=; Expires=Thu, 01 Jan 1970 00:00:01 GMT' ] } });
    my $h = Test::Retarget::apply_jar($jar, [ ['Cookie', 'z=0'] ]);
    is_deeply($h, [ ['Cookie', 'z=0; a=9'] ], 'cookie jar: update, delete, merge');
}

# a server that never answers: the client must time out and say so
{
    my $silent = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
        LocalPort => $ENV{TEST_NGINX_RAND_PORT_1}, Listen => 5, ReuseAddr => 1)
        or die "cannot listen: $!";
    my $t0 = time;
    my $r = http_req(port => $ENV{TEST_NGINX_RAND_PORT_1}, uri => '/', timeout => 1);
    # (timeouts are tripled under TEST_RETARGET_VALGRIND)
    like($r->{error}, qr/timeout after [13]s/, 'http_req: timeout is reported');
    ok(time - $t0 < 5, 'http_req: timeout is honoured');
}

# RESP client
{
    is(redis_cmd('SET', 'k', "two words"), 'OK', 'redis: status reply');
    is(redis_cmd('GET', 'k'), 'two words', 'redis: bulk reply');
    is(redis_cmd('GET', 'nope'), undef, 'redis: nil reply');
    is(redis_cmd('INCR', 'n'), 1, 'redis: integer reply');
    redis_cmd('RPUSH', 'l', 'x', '', 'z');
    is_deeply(redis_cmd('LRANGE', 'l', 0, -1), ['x', '', 'z'], 'redis: array reply');
    like(redis_cmd('INCR', 'k'), qr/^ERR: /, 'redis: error reply');
}

# start_nginx / http_req / write_file / error log marks / stop_nginx
{
    write_file('adhoc/page.html', "<p>adhoc</p>\n");
    ok(start_nginx({ config => 'location / { }' }), 'start_nginx');
    my $r = http_req(uri => '/adhoc/page.html', headers => { 'X-A' => 'b' });
    is($r->{status}, 200, 'http_req: status');
    is($r->{body}, "<p>adhoc</p>\n", 'http_req: body');
    is_deeply($r->{headers}{'content-type'}, ['text/html'], 'http_req: headers');
    $r = http_req(method => 'POST', uri => '/adhoc/page.html', body => 'x=1');
    is($r->{status}, 405, 'http_req: POST with a body');
    $r = http_req(uri => '/adhoc/page.html',
                  headers => ['Connection: keep-alive']);
    ok(!$r->{error} && $r->{body} eq "<p>adhoc</p>\n",
       'http_req: keep-alive response read without waiting for close');
    is(stop_nginx(), 1, 'stop_nginx: exited on QUIT');
    like(error_log_since_mark(), qr/signal 3 \(SIGQUIT\) received/,
         'error_log_since_mark sees this run');
    check_error_log_clean('ad-hoc run');
}

# nginx that does not finish a graceful QUIT in time (a proxied request is
# still waiting for its upstream) is reported, then terminated.  Not under
# valgrind: there nginx runs master_process off, which quits at once.
SKIP: {
    skip 'single-process nginx has no graceful QUIT', 2
        if $ENV{TEST_RETARGET_VALGRIND};
    local $Test::Retarget::StopTimeout = 1;
    Test::Retarget::start_backend(["HTTP/1.1 200 OK\r\n\r\nfirst", "late"], 30);
    # unbuffered, so that "first" reaches us while the request is in flight
    start_nginx({ config => 'location / { proxy_buffering off; proxy_pass '
                  . "http://127.0.0.1:$ENV{TEST_NGINX_BACKEND_PORT}; }" });
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => server_port()) or die $!;
    print {$c} "GET / HTTP/1.0\r\n\r\n";
    my $got = '';
    while ($got !~ /first/) {
        my $ch = getc($c);
        last unless defined $ch;
        $got .= $ch;
    }
    like($got, qr{^HTTP/1.1 200.*first}s, 'slow upstream: request in flight');
    is(stop_nginx(), 0, 'stop_nginx: a QUIT that does not finish is reported');
    Test::Retarget::stop_backend();
}

# a child that ignores the polite signal is terminated, by its pid
{
    my $out = servroot() . '/logs/stubborn.log';
    my $pid = Test::Retarget::spawn(out => $out, argv => [$^X, '-e',
        '$SIG{QUIT} = "IGNORE"; $| = 1; print "ready\n"; sleep 60']);
    select(undef, undef, undef, 0.05) until -s $out;   # QUIT is ignored now
    is(Test::Retarget::stop_child($pid, 'QUIT', 1), 0, 'stop_child: reports no clean exit');
    ok(!kill(0, $pid), 'stop_child: the process is gone');
}

run_tests();

__DATA__

=== TEST 1: static file, exact and absent headers
--- config
location / { }
--- user_files
>>> index.html
<html><body>hi</body></html>
>>> css/site.css
body { color: red }
--- request
GET /index.html
--- error_code: 200
--- response_headers
Content-Type: text/html
content-length: 29
!X-Nope
!Set-Cookie
--- response_headers_like
Last-Modified: GMT$
ETag: ^"[0-9a-f]+-1d"$
--- response_body
<html><body>hi</body></html>
--- response_body_unlike: hello
--- no_error_log
[error]
[warn]



=== TEST 2: more_headers, request body, and a second user file
--- config
location / { }
location = /echo {
    return 200 "m=$request_method ua=$http_user_agent len=$content_length host=$host";
}
--- user_files
>>> index.html
index
>>> css/site.css
body { color: red }
--- request eval
["GET /css/site.css", "POST /echo\nabc"]
--- more_headers
User-Agent: harness/1
--- response_headers eval
["Content-Type: text/css", "Content-Type: text/plain"]
--- response_body eval
["body { color: red }\n", "m=POST ua=harness/1 len=3 host=localhost"]



=== TEST 3: cookie jar carries Set-Cookie across a redirect
--- config
location = /login {
    add_header Set-Cookie "sid=abc; Path=/; HttpOnly";
    add_header Set-Cookie "tmp=x; Path=/";
    return 302 /echo;
}
location = /logout {
    add_header Set-Cookie "tmp=; Max-Age=0; Path=/";
    return 204;
}
location = /echo { return 200 "cookie=[$http_cookie]"; }
--- request eval
["GET /login", "GET /echo", "GET /logout", "GET /echo"]
--- more_headers eval
[undef, "Cookie: extra=1", undef, undef]
--- error_code eval
[302, 200, 204, 200]
--- response_headers eval
['Set-Cookie: tmp=x; Path=/
Location: http://localhost:$TEST_NGINX_SERVER_PORT/echo', undef, undef, undef]
--- response_headers_like eval
["Set-Cookie: ^sid=abc;.*HttpOnly", undef, undef, undef]
--- response_body eval
[undef, "cookie=[extra=1; sid=abc; tmp=x]", "", "cookie=[sid=abc]"]



=== TEST 4: no_cookie_jar
--- config
location = /login { add_header Set-Cookie "sid=abc"; return 302 /echo; }
location = /echo { return 200 "cookie=[$http_cookie]"; }
--- request eval
["GET /login", "GET /echo"]
--- no_cookie_jar
--- error_code eval
[302, 200]
--- response_body eval
[undef, "cookie=[]"]



=== TEST 5: must_die with a bad directive
--- config
location / { no_such_directive on; }
--- must_die
--- error_log
unknown directive "no_such_directive"
test failed



=== TEST 6: backend chunks through proxy_pass, chunked to the client
--- config
location / {
    proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT;
    proxy_buffering off;
}
--- backend eval
["HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n<html><bo",
 "dy>part",
 "</body></html>"]
--- backend_delay: 0.1
--- request
GET /x
--- response_headers
Content-Type: text/html
Transfer-Encoding: chunked
!Content-Length
--- response_body chomp
<html><body>part</body></html>
--- error_log eval
["http proxy status 200", qr/http upstream request: "\/x\?"/]



=== TEST 7: gzip and --- gunzip
--- config
gzip on;
gzip_types text/plain;
gzip_min_length 1;
location / { return 200 "hello gzip world\n"; }
--- request
GET /
--- more_headers
Accept-Encoding: gzip
--- gunzip
--- response_headers
Content-Encoding: gzip
--- response_body
hello gzip world



=== TEST 8: HTTP/2 through curl (lowercase header names)
--- listen_opts: http2
--- config
location / { add_header X-Mixed-Case yes; return 200 "proto=$server_protocol"; }
--- curl: --http2-prior-knowledge
--- request
GET /h2?a=[1]
--- response_headers
Content-Type: text/plain
X-MIXED-CASE: yes
--- response_body chomp
proto=HTTP/2.0



=== TEST 9: curl over HTTP/1.1 with a body and the cookie jar
--- config
location = /login { add_header Set-Cookie "sid=c1"; return 200 "in"; }
location = /echo {
    return 200 "cookie=[$http_cookie] len=$content_length";
}
--- curl
--- request eval
["GET /login", "PUT /echo\nhello"]
--- response_body eval
["in", "cookie=[sid=c1] len=5"]



=== TEST 10: redis_init and redis_check
--- redis_init
SET a 1
RPUSH l x y
--- config
location / { return 200 ok; }
--- request
GET /
--- response_body chomp
ok
--- redis_check eval
[
  [ ['GET', 'a'], '1' ],
  [ ['LRANGE', 'l', 0, -1], ['x', 'y'] ],
  [ 'GET missing', undef ],
  [ 'INCR a', 2 ],
  [ ['TYPE', 'l'], qr/^list$/ ],
  [ ['LRANGE', 'l', 0, -1], qr/^x y$/ ],
]



=== TEST 11: redis is flushed between blocks
--- config
location / { return 200 ok; }
--- request
GET /
--- redis_check eval
[ [ 'GET a', undef ], [ 'DBSIZE', 0 ] ]



=== TEST 12: --- init writes a 1 MB file; body_like on a big body
--- init eval
write_file('big.html', '<html>' . ('x' x 1_000_000) . '</html>');
--- config
location / { }
--- request
GET /big.html
--- response_headers
Content-Length: 1000013
--- response_body_like: ^<html>(?:x{1000}){1000}</html>$



=== TEST 13: raw_request, HTTP/1.0, and error_log with qr//
--- config
location / { return 200 "v=$server_protocol"; }
--- raw_request eval
"GET /raw HTTP/1.0\r\nHost: localhost\r\n\r\n"
--- response_body: v=HTTP/1.0
--- error_log eval
qr{"GET /raw HTTP/1\.0"}
--- no_error_log eval
["[error]", qr/\[crit\]/]



=== TEST 14: environment expansion in main_config, http_config, config
--- main_config
env TEST_NGINX_HTML_DIR;
--- http_config
map $uri $port_seen { default "$TEST_NGINX_SERVER_PORT"; }
--- config
location / { return 200 "port=$port_seen root=$TEST_NGINX_HTML_DIR"; }
--- request
GET /
--- response_body eval
"port=$ENV{TEST_NGINX_SERVER_PORT} root=$ENV{TEST_NGINX_HTML_DIR}"



=== TEST 15: wait, and an [error] in the log found by error_log
--- config
location / { }
--- request
GET /missing.html
--- error_code: 404
--- wait: 0.2
--- error_log
[error]
No such file or directory



=== TEST 16: SKIP blocks are not run
--- SKIP
--- config
location / { this would die; }
--- request
GET /
