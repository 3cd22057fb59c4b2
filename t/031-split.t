# "</body>" split across buffers at every possible byte: static files read
# in 16-byte buffers, and an upstream that sends one byte at a time.
use lib 't/lib';
use Test::Retarget;

default_http_config(q{
    retarget_secret 0123456789abcdef0123456789abcdef;
    retarget_notice $TEST_NGINX_SERVROOT/../data/n.html;
});

# Pages whose "</body>" starts at each offset of a 16-byte buffer, plus
# near misses that begin a match and break it across a boundary.
our @PAGES = map { ('x' x $_) . "</body></html>\n" } 0 .. 15;
push @PAGES, map { ('y' x $_) . "</bo</b<</BODY</body></html>\n" } 0 .. 15;

our @FILES = map { "p$_.html" } 0 .. $#PAGES;

sub injected {
    my ($page) = @_;
    $page =~ s{</body>}{[N]</body>}i;   # the first full tag only
    return $page;
}

sub write_pages {
    for my $i (0 .. $#PAGES) {
        open my $fh, '>', "$ENV{TEST_NGINX_HTML_DIR}/$FILES[$i]" or die $!;
        print $fh $PAGES[$i];
        close $fh;
    }
}

run_tests();

__DATA__

=== TEST 1: static files in 16-byte buffers, every split point
--- config
retarget on;
location / { output_buffers 1 16; sendfile off; }
--- init eval
main::write_pages();
--- request eval
[map { "GET /$_" } @main::FILES]
--- response_body eval
[map { main::injected($_) } @main::PAGES]

=== TEST 2: the same with sendfile on (the module asks for memory buffers)
--- config
retarget on;
location / { output_buffers 2 16; sendfile on; }
--- init eval
main::write_pages();
--- request eval
[map { "GET /$_" } @main::FILES]
--- response_body eval
[map { main::injected($_) } @main::PAGES]

=== TEST 3: an upstream that trickles one byte at a time, proxy_buffering off
--- config
retarget on;
location / { proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT; proxy_buffering off; }
--- backend eval
my $body = "<html><body><p>trickle</p></b</BO</bOdY></html>\n";
["HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n", split //, $body]
--- backend_delay: 0.01
--- request
GET /t
--- timeout: 10
--- response_body
<html><body><p>trickle</p></b</BO[N]</bOdY></html>

=== TEST 4: trickled with no </body> at all, ending in a partial tag
--- config
retarget on;
location / { proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT; proxy_buffering off; }
--- backend eval
my $body = "<p>no end</p></body";
["HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n", split //, $body]
--- backend_delay: 0.01
--- request
GET /t
--- timeout: 10
--- response_body chomp
<p>no end</p></body[N]

=== TEST 5: chunked upstream, chunks cut inside the tag
--- config
retarget on;
location / { proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT; proxy_buffering off; proxy_http_version 1.1; }
--- backend eval
["HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
 "e\r\n<html><body>x<\r\n", "3\r\n/bo\r\n", "1\r\nd\r\n", "a\r\ny></html>\n\r\n", "0\r\n\r\n"]
--- request
GET /t
--- response_body
<html><body>x[N]</body></html>
