# No 304 for a page the module would personalise, whoever answers it
# (issue 10, point 8): for a GET or HEAD that accepts text/html in a
# location with "retarget on", If-None-Match and If-Modified-Since never
# reach the upstream (proxy, FastCGI, SCGI, uwsgi, gRPC), so an upstream
# that answers 304 on its own still sends the whole page, and the notice
# goes in.  Anything else (retarget off, an image or JSON request, a POST)
# keeps its validators and gets the upstream's 304.
#
# The fake upstreams below answer 304 whenever they receive If-None-Match
# or If-Modified-Since, 200 with an ETag and a page otherwise, and echo
# the conditional headers they got in "X-Saw".  The gRPC upstream is a
# second server of the same nginx, speaking HTTP/2 without TLS: a fake in
# Perl would need HPACK with Huffman decoding.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use FCGI;
use IO::Handle;
use IO::Select;
use IO::Socket::INET;
use POSIX ();

our $PAGE = "<html><body><p>shop</p></body></html>\n";
our $INJECTED = "<html><body><p>shop</p>[N]</body></html>\n";
our $NONE = 'inm=;ims=;im=;ius=;ir=';

# The conditional headers received, from a hash of lower-case names.
sub saw {
    my ($h) = @_;
    return join ';', map { "$_->[0]=" . (defined $h->{$_->[1]} ? $h->{$_->[1]} : '') }
        [inm => 'if-none-match'], [ims => 'if-modified-since'],
        [im => 'if-match'], [ius => 'if-unmodified-since'], [ir => 'if-range'];
}

# (status line text, header lines, body) of the fake's answer
sub answer {
    my ($h, $head_only) = @_;
    my $saw = saw($h);
    if (defined $h->{'if-none-match'} || defined $h->{'if-modified-since'}) {
        return ('304 Not Modified', "ETag: \"v1\"\r\nX-Saw: $saw\r\n", '');
    }
    return ('200 OK', "Content-Type: text/html\r\nETag: \"v1\"\r\n"
            . "Last-Modified: Mon, 02 Jan 2006 15:04:05 GMT\r\n"
            . "Content-Length: " . length($PAGE) . "\r\nX-Saw: $saw\r\n",
            $head_only ? '' : $PAGE);
}

sub read_exactly {
    my ($c, $n) = @_;
    my $buf = '';
    while (length $buf < $n) {
        my $got = sysread($c, $buf, $n - length $buf, length $buf);
        last unless $got;
    }
    return $buf;
}

sub write_all {
    my ($c, $data) = @_;
    my $off = 0;
    while ($off < length $data) {
        my $n = syswrite($c, $data, length($data) - $off, $off);
        return unless defined $n;
        $off += $n;
    }
}

# CGI-style variables (HTTP_IF_NONE_MATCH) as lower-case header names
sub cgi_headers {
    my ($env) = @_;
    my %h;
    for my $k (grep { /^HTTP_/ } keys %$env) {
        (my $name = lc substr($k, 5)) =~ tr/_/-/;
        $h{$name} = $env->{$k};
    }
    return \%h;
}

sub serve_http {
    my ($c) = @_;
    my $head = '';
    while ($head !~ /\r\n\r\n/) {
        my $n = sysread($c, $head, 4096, length $head);
        return unless $n;
    }
    my ($start, $rest) = split /\r\n\r\n/, $head, 2;
    my ($line, @lines) = split /\r\n/, $start;
    my (%h, @pads);
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        $h{lc $k} = $v;
        push @pads, $v if lc($k) =~ /^x-pad/;
    }
    my $len = $h{'content-length'} || 0;
    read_exactly($c, $len - length $rest) if $len > length $rest;
    my ($status, $lines, $body) = answer(\%h, $line =~ /^HEAD /);
    $lines .= "X-Pads: " . join(',', @pads) . "\r\n"
            . "X-Accept: " . ($h{accept} || '') . "\r\n";
    write_all($c, "HTTP/1.1 $status\r\n${lines}Connection: close\r\n\r\n$body");
}

# SCGI: a netstring of NUL-separated names and values, then the body
sub serve_scgi {
    my ($c) = @_;
    my $len = '';
    while ($len !~ /:\z/) {
        my $got = sysread($c, my $ch, 1);
        return unless $got;
        $len .= $ch;
    }
    chop $len;
    my $data = read_exactly($c, $len + 1);
    my %env = split /\0/, substr($data, 0, $len);
    read_exactly($c, $env{CONTENT_LENGTH}) if $env{CONTENT_LENGTH};
    my ($status, $lines, $body) = answer(cgi_headers(\%env),
                                         ($env{REQUEST_METHOD} || '') eq 'HEAD');
    write_all($c, "Status: $status\r\n$lines\r\n$body");
}

# uwsgi: modifier1, a 16-bit little-endian size, modifier2, then the
# variables as 16-bit-length-prefixed names and values
sub serve_uwsgi {
    my ($c) = @_;
    my (undef, $size) = unpack 'C v C', read_exactly($c, 4);
    my $data = read_exactly($c, $size);
    my (%env, $pos);
    $pos = 0;
    while ($pos + 2 <= length $data) {
        my $kl = unpack 'v', substr($data, $pos, 2);
        my $k = substr($data, $pos + 2, $kl);
        $pos += 2 + $kl;
        my $vl = unpack 'v', substr($data, $pos, 2);
        $env{$k} = substr($data, $pos + 2, $vl);
        $pos += 2 + $vl;
    }
    my ($status, $lines, $body) = answer(cgi_headers(\%env),
                                         ($env{REQUEST_METHOD} || '') eq 'HEAD');
    write_all($c, "HTTP/1.1 $status\r\n$lines\r\n$body");
}

my @Fakes;

END {
    local $?;                   # keep the test's exit status
    for my $pid (@Fakes) {
        kill 'TERM', $pid;
        waitpid $pid, 0;
    }
}

# Bound here, served by a child: the port accepts before nginx starts.
sub fake {
    my ($port, $serve) = @_;
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
        Proto => 'tcp', Listen => 64, ReuseAddr => 1)
        or die "fake upstream: cannot listen on $port: $!\n";
    my $pid = fork // die "fork: $!\n";
    if (!$pid) {
        @Fakes = ();
        $SIG{$_} = 'DEFAULT' for qw(INT TERM);
        while (1) {
            my $c = $l->accept or next;
            eval { $serve->($c) };
            close $c;
        }
        POSIX::_exit(0);
    }
    close $l;
    push @Fakes, $pid;
}

sub fake_fastcgi {
    my ($port) = @_;
    my $sock = FCGI::OpenSocket("127.0.0.1:$port", 64)
        or die "fake FastCGI: cannot listen on $port\n";
    my $pid = fork // die "fork: $!\n";
    if (!$pid) {
        @Fakes = ();
        $SIG{$_} = 'DEFAULT' for qw(INT TERM);
        my ($in, $out, $err) = (IO::Handle->new, IO::Handle->new,
                                IO::Handle->new);
        my %env;
        my $req = FCGI::Request($in, $out, $err, \%env, $sock);
        while ($req->Accept() >= 0) {
            my ($status, $lines, $body) = answer(cgi_headers(\%env),
                                       ($env{REQUEST_METHOD} || '') eq 'HEAD');
            print $out "Status: $status\r\n$lines\r\n$body";
            $req->Finish();
        }
        POSIX::_exit(0);
    }
    FCGI::CloseSocket($sock);
    push @Fakes, $pid;
}

# one more port for the HTTP/2 server, distinct from the harness's
my %taken = map { $_ => 1 } @ENV{qw(TEST_NGINX_SERVER_PORT TEST_NGINX_BACKEND_PORT
                                 TEST_NGINX_RAND_PORT_1 TEST_NGINX_RAND_PORT_2
                                 TEST_NGINX_RAND_PORT_3)};
($ENV{TEST_NGINX_H2_PORT}) = grep { !$taken{$_} } Test::Retarget::free_ports(6);

fake($ENV{TEST_NGINX_BACKEND_PORT}, \&serve_http);
fake_fastcgi($ENV{TEST_NGINX_RAND_PORT_1});
fake($ENV{TEST_NGINX_RAND_PORT_2}, \&serve_scgi);
fake($ENV{TEST_NGINX_RAND_PORT_3}, \&serve_uwsgi);

# A fixed notice (t/data/n.html: "[N]") keeps the expected bodies short.
default_http_config(q{
    retarget_secret 0123456789abcdef0123456789abcdef;
    retarget_notice $TEST_NGINX_SERVROOT/../data/n.html;

    # the gRPC upstream: HTTP/2 without TLS, the module off
    server {
        listen 127.0.0.1:$TEST_NGINX_H2_PORT http2;
        server_name h2;

        location / {
            add_header X-Saw "inm=$http_if_none_match;ims=$http_if_modified_since;im=$http_if_match;ius=$http_if_unmodified_since;ir=$http_if_range" always;
            if ($http_if_none_match) { return 304; }
            if ($http_if_modified_since) { return 304; }
            default_type text/html;
            return 200 "<html><body><p>shop</p></body></html>\n";
        }
    }
});

default_config(q{
    retarget on;

    location /h10/ { proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT; }
    location /h11/ {
        proxy_http_version 1.1;
        proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT;
    }
    location /off/ {
        retarget off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT;
    }
    location /fcgi/ {
        fastcgi_param REQUEST_METHOD $request_method;
        fastcgi_pass 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
    }
    location /scgi/ {
        scgi_param REQUEST_METHOD $request_method;
        scgi_pass 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
    }
    location /uwsgi/ {
        uwsgi_param REQUEST_METHOD $request_method;
        uwsgi_pass 127.0.0.1:$TEST_NGINX_RAND_PORT_3;
    }
    location /grpc/ { grpc_pass grpc://127.0.0.1:$TEST_NGINX_H2_PORT; }

    # a shop served by nginx itself, which answers 304 on its own
    location /shop/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/origin/;
    }
    location /origin/ { retarget off; alias $TEST_NGINX_HTML_DIR/; }

    location / { }
});

run_tests();

__DATA__

=== TEST 1: proxy (HTTP/1.0): a conditional navigation gets the page, the upstream no validator
--- request eval
["GET /h10/p", "GET /h10/p", "GET /h10/p"]
--- more_headers eval
["Accept: text/html",
 "Accept: text/html\r\nIf-None-Match: \"v1\"",
 "Accept: text/html,*/*;q=0.8\r\nIf-None-Match: \"v1\"\r\nIf-Modified-Since: Mon, 02 Jan 2006 15:04:05 GMT"]
--- response_body eval
[($main::INJECTED) x 3]
--- response_headers eval
"X-Saw: $main::NONE\nCache-Control: private"
--- error_log
If-None-Match (1) and If-Modified-Since (1) removed, no 304

=== TEST 2: proxy_http_version 1.1, and HEAD
--- request eval
["GET /h11/p", "HEAD /h11/p"]
--- more_headers eval
["Accept: text/html\r\nIf-None-Match: \"v1\"\r\nIf-Modified-Since: Mon, 02 Jan 2006 15:04:05 GMT",
 "Accept: text/html\r\nIf-None-Match: \"v1\""]
--- response_body eval
[$main::INJECTED, '']
--- response_headers eval
"X-Saw: $main::NONE"
--- error_log
If-None-Match (1) and If-Modified-Since (0) removed

=== TEST 3: where the module would not personalise, the validators go through and the upstream's 304 stands
--- request eval
["GET /off/p", "GET /h11/i.png", "GET /h11/api", "POST /h11/form"]
--- more_headers eval
["Accept: text/html\r\nIf-None-Match: \"v1\"",
 "Accept: image/webp,*/*\r\nIf-None-Match: \"v1\"\r\nIf-Modified-Since: Mon, 02 Jan 2006 15:04:05 GMT",
 "Accept: application/json\r\nIf-Modified-Since: Mon, 02 Jan 2006 15:04:05 GMT",
 "Accept: text/html\r\nIf-None-Match: \"v1\""]
--- error_code eval
[304, 304, 304, 304]
--- response_headers eval
["X-Saw: inm=\"v1\";ims=;im=;ius=;ir=",
 "X-Saw: inm=\"v1\";ims=Mon, 02 Jan 2006 15:04:05 GMT;im=;ius=;ir=",
 "X-Saw: inm=;ims=Mon, 02 Jan 2006 15:04:05 GMT;im=;ius=;ir=",
 "X-Saw: inm=\"v1\";ims=;im=;ius=;ir="]
--- no_error_log
removed, no 304

=== TEST 4: If-Match, If-Unmodified-Since and If-Range stay (412 and ranges, never a stale page)
--- request
GET /h11/p
--- more_headers
Accept: text/html
If-None-Match: "v1"
If-Match: "v1"
If-Unmodified-Since: Mon, 02 Jan 2006 15:04:05 GMT
Range: bytes=0-3
If-Range: "v1"
--- response_body eval
$main::INJECTED
--- response_headers
X-Saw: inm=;ims=;im="v1";ius=Mon, 02 Jan 2006 15:04:05 GMT;ir="v1"
!Content-Range

=== TEST 5: the other headers survive, in order, wherever the removed ones sat in the list
--- no_cookie_jar
--- request eval
my @pads = map { ["X-Pad-$_", sprintf "%02d", $_] } 1 .. 25;
[
 # If-None-Match first of the first part, If-Modified-Since last of the last
 { uri => '/h11/p', headers => [
     ['If-None-Match', '"v1"'], ['Host', 'localhost'],
     ['Accept', 'text/html'], ['Connection', 'close'], @pads,
     ['If-Modified-Since', 'Mon, 02 Jan 2006 15:04:05 GMT']] },
 # last of the first part (the 20th) and first of the second
 { uri => '/h11/p', headers => [
     ['Host', 'localhost'], ['Accept', 'text/html'], ['Connection', 'close'],
     @pads[0 .. 15], ['If-None-Match', '"v1"'],
     ['If-Modified-Since', 'Mon, 02 Jan 2006 15:04:05 GMT'], @pads[16 .. 24]] },
 # inside the first part and inside the second
 { uri => '/h11/p', headers => [
     ['Host', 'localhost'], ['If-Modified-Since', 'Mon, 02 Jan 2006 15:04:05 GMT'],
     ['Accept', 'text/html'], ['Connection', 'close'], @pads[0 .. 19],
     ['If-None-Match', '"v1"'], @pads[20 .. 24]] },
]
--- response_body eval
[($main::INJECTED) x 3]
--- response_headers eval
my $pads = join ',', map { sprintf "%02d", $_ } 1 .. 25;
"X-Saw: $main::NONE\nX-Pads: $pads\nX-Accept: text/html"

=== TEST 6: FastCGI
--- request eval
["GET /fcgi/p", "HEAD /fcgi/p", "GET /fcgi/api"]
--- more_headers eval
["Accept: text/html\r\nIf-None-Match: \"v1\"\r\nIf-Modified-Since: Mon, 02 Jan 2006 15:04:05 GMT",
 "Accept: text/html\r\nIf-None-Match: \"v1\"",
 "Accept: application/json\r\nIf-None-Match: \"v1\""]
--- error_code eval
[200, 200, 304]
--- response_body eval
[$main::INJECTED, '', undef]
--- response_headers eval
["X-Saw: $main::NONE", "X-Saw: $main::NONE", "X-Saw: inm=\"v1\";ims=;im=;ius=;ir="]

=== TEST 7: SCGI
--- request eval
["GET /scgi/p", "GET /scgi/api"]
--- more_headers eval
["Accept: text/html\r\nIf-None-Match: \"v1\"\r\nIf-Modified-Since: Mon, 02 Jan 2006 15:04:05 GMT",
 "Accept: application/json\r\nIf-None-Match: \"v1\""]
--- error_code eval
[200, 304]
--- response_body eval
[$main::INJECTED, undef]
--- response_headers eval
["X-Saw: $main::NONE", "X-Saw: inm=\"v1\";ims=;im=;ius=;ir="]

=== TEST 8: uwsgi
--- request eval
["GET /uwsgi/p", "GET /uwsgi/api"]
--- more_headers eval
["Accept: text/html\r\nIf-None-Match: \"v1\"\r\nIf-Modified-Since: Mon, 02 Jan 2006 15:04:05 GMT",
 "Accept: application/json\r\nIf-None-Match: \"v1\""]
--- error_code eval
[200, 304]
--- response_body eval
[$main::INJECTED, undef]
--- response_headers eval
["X-Saw: $main::NONE", "X-Saw: inm=\"v1\";ims=;im=;ius=;ir="]

=== TEST 9: gRPC (HTTP/2 to the upstream)
--- request eval
["GET /grpc/p", "GET /grpc/api"]
--- more_headers eval
["Accept: text/html\r\nIf-None-Match: \"v1\"\r\nIf-Modified-Since: Mon, 02 Jan 2006 15:04:05 GMT",
 "Accept: application/json\r\nIf-None-Match: \"v1\""]
--- error_code eval
[200, 304]
--- response_body eval
[$main::INJECTED, undef]
--- response_headers eval
["X-Saw: $main::NONE", "X-Saw: inm=\"v1\";ims=;im=;ius=;ir="]

=== TEST 10: a shop served by nginx behind proxy_pass: its own 304 only for assets
--- user_files
>>> p.html
<html><body><p>shop</p></body></html>
>>> i.png
png
--- request eval
["GET /shop/p.html", "GET /shop/i.png"]
--- more_headers eval
["Accept: text/html\r\nIf-None-Match: *",
 "Accept: image/png\r\nIf-None-Match: *"]
--- error_code eval
[200, 304]
--- response_body eval
[$main::INJECTED, undef]

=== TEST 11: a static file with the module on: nginx's own check stays off
--- user_files
>>> p.html
<html><body><p>shop</p></body></html>
>>> i.png
png
--- request eval
["GET /p.html", "HEAD /p.html", "GET /i.png"]
--- more_headers eval
["Accept: text/html\r\nIf-None-Match: *\r\nIf-Modified-Since: Thu, 31 Dec 2037 23:55:55 GMT",
 "Accept: text/html\r\nIf-None-Match: *",
 "Accept: image/png\r\nIf-None-Match: *"]
--- error_code eval
[200, 200, 304]
--- response_body eval
[$main::INJECTED, '', undef]
--- error_log
If-None-Match (1) and If-Modified-Since (1) removed

=== TEST 12: HTTP/2 from the client (h2c), through proxy_pass
--- listen_opts: http2
--- curl: --http2-prior-knowledge
--- request
GET /h11/p
--- more_headers
Accept: text/html
If-None-Match: "v1"
If-Modified-Since: Mon, 02 Jan 2006 15:04:05 GMT
--- response_body eval
$main::INJECTED
--- response_headers eval
"X-Saw: $main::NONE"
