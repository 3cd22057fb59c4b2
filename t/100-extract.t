# retarget_extract: variables from the request body, the upstream's
# response body and the page's embedded object (issue 10, point 1).
#
# nginx proxies /api/, /small/, /spill/ and /noevents/ to a fake upstream
# started by this file (a forked Perl server): it answers each path with a
# fixed body (JSON, JSON sent in chunks, text, gzip, too large) and tells,
# in X-Got-Len and X-Got-Sha1, which request body it received, so every
# request also checks that proxy_pass sent the body unchanged.
#
# The values are read at the variable level from an access log written
# with escape=json (the log phase, where events read them too), and
# through events in the Redis stream.  Event values are URL-decoded today
# (another part of issue 10 changes that), so the values that reach the
# stream here hold no "+" or "%".
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis;
use Digest::SHA qw(sha1_hex);
use IO::Compress::Gzip qw(gzip $GzipError);
use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(sleep time);

use_redis();

my $SECRET = '0123456789abcdef0123456789abcdef';
my $JSON = JSON::PP->new->utf8->canonical;

#--------------------------------------------------------------------------
# the fake upstream
#--------------------------------------------------------------------------

my $RESP_JSON = '{"data":{"item":{"sku":"R-1","name":"Bowl","price":15.5,'
              . '"qty":2},"items":[{"sku":"A","quantity":1},'
              . '{"sku":"B","quantity":2}]}}';

# WooCommerce Store API's /batch: one response per request, the last one
# holding the cart after every mutation
my $RESP_BATCH = '{"responses":[{"status":201,"body":{"items":[{"key":"k1",'
               . '"name":"First"}]}},{"status":200,"body":{"items":['
               . '{"key":"k1","name":"First","prices":{"price":"1000"}},'
               . '{"key":"k2","name":"Second","prices":{"price":"1500",'
               . '"currency_minor_unit":2}}]}}]}';

my $RESP_BIG = '{"data":{"item":{"sku":"BIG"}},"pad":"' . ('x' x 140_000)
             . '"}';

my $gz;
gzip(\$RESP_JSON => \$gz) or die "gzip: $GzipError";

# path => [content type, body, extra header lines, chunks (0: one piece)]
my %ROUTE = (
    '/api/echo'       => [ 'text/plain', "ok\n" ],
    '/api/json'       => [ 'application/json', $RESP_JSON ],
    '/api/vnd'        => [ 'application/vnd.api+json; charset=utf-8',
                           $RESP_JSON ],
    '/api/batch'      => [ 'application/json', $RESP_BATCH ],
    '/api/textjson'   => [ 'text/plain', $RESP_JSON ],
    '/api/gzip'       => [ 'application/json', $gz,
                           "Content-Encoding: gzip\r\n" ],
    '/api/big'        => [ 'application/json', $RESP_BIG ],
    '/api/chunked'    => [ 'application/json', $RESP_JSON, '', 5 ],
    '/api/bigchunked' => [ 'application/json', $RESP_BIG, '', 4 ],
    '/api/notjson'    => [ 'application/json', '{"data": {"item": ' ],
);

my ($UP_PORT) = Test::Retarget::free_ports(1);
$ENV{TEST_NGINX_UPSTREAM_PORT} = $UP_PORT;
my $UP_PID = start_upstream();

END { local $?; if ($UP_PID) { kill "TERM", $UP_PID; waitpid($UP_PID, 0) } }

sub start_upstream {
    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
        LocalPort => $UP_PORT, Proto => 'tcp', Listen => 64, ReuseAddr => 1)
        or die "upstream: cannot listen on $UP_PORT: $!\n";
    my $pid = fork;
    die "fork: $!\n" unless defined $pid;
    if (!$pid) {
        $SIG{$_} = 'DEFAULT' for qw(INT TERM);
        while (1) {
            my $c = $listen->accept or next;
            eval { serve($c) };
            close $c;
        }
        POSIX::_exit(0);
    }
    close $listen;
    return $pid;
}

sub read_more {
    my ($c, $buf) = @_;
    my $sel = IO::Select->new($c);
    return 0 unless $sel->can_read(10);
    return sysread($c, $$buf, 65536, length $$buf);
}

sub serve {
    my ($c) = @_;
    my $buf = '';
    while ($buf !~ /\r\n\r\n/) { read_more($c, \$buf) or return }
    my ($head, $rest) = split /\r\n\r\n/, $buf, 2;
    my ($line, @h) = split /\r\n/, $head;
    my ($path) = $line =~ m{^\S+ (\S+)};
    $path =~ s/\?.*//;
    my %h = map { /^([^:]+):\s*(.*)$/ ? (lc $1 => $2) : () } @h;
    my $body = '';
    if (defined $h{'content-length'}) {
        while (length $rest < $h{'content-length'}) {
            read_more($c, \$rest) or last;
        }
        $body = $rest;
    } elsif (($h{'transfer-encoding'} // '') =~ /chunked/i) {
        while (1) {
            if ($rest =~ /^([0-9a-fA-F]+)\r\n/) {
                my $n = hex $1;
                my $need = length($1) + 2 + $n + 2;
                if (length $rest >= $need) {
                    last if $n == 0;
                    $body .= substr($rest, length($1) + 2, $n);
                    substr($rest, 0, $need) = '';
                    next;
                }
            }
            read_more($c, \$rest) or last;
        }
    }
    my ($type, $out, $extra, $chunks) = @{ $ROUTE{$path}
                                           || [ 'text/plain', "none\n" ] };
    $extra //= '';
    my $got = 'X-Got-Len: ' . length($body) . "\r\nX-Got-Sha1: "
            . sha1_hex($body) . "\r\n";
    if ($chunks) {
        syswrite($c, "HTTP/1.1 200 OK\r\nContent-Type: $type\r\n$extra$got"
                     . "Transfer-Encoding: chunked\r\n"
                     . "Connection: close\r\n\r\n");
        my $size = int(length($out) / $chunks) + 1;
        for (my $i = 0; $i < length $out; $i += $size) {
            my $piece = substr($out, $i, $size);
            syswrite($c, sprintf("%x\r\n%s\r\n", length $piece, $piece));
            sleep 0.05;
        }
        syswrite($c, "0\r\n\r\n");
        return;
    }
    my $resp = "HTTP/1.1 200 OK\r\nContent-Type: $type\r\n$extra$got"
             . 'Content-Length: ' . length($out)
             . "\r\nConnection: close\r\n\r\n$out";
    my $off = 0;
    while ($off < length $resp) {
        my $n = syswrite($c, $resp, length($resp) - $off, $off);
        last unless defined $n;
        $off += $n;
    }
}

#--------------------------------------------------------------------------
# nginx
#--------------------------------------------------------------------------

# the variables: name => [source, path]
my @VARS = (
    [ rq_sku     => request  => 'sku' ],
    [ rq_item    => request  => 'items.1.id' ],
    [ rq_last    => request  => 'items.-1.id' ],
    [ rq_first   => request  => 'items.-3.id' ],
    [ rq_past    => request  => 'items.3.id' ],
    [ rq_obj     => request  => 'items.0' ],
    [ rq_items   => request  => 'items' ],
    [ rq_n       => request  => 'n' ],
    [ rq_price   => request  => 'price' ],
    [ rq_four    => request  => 'four' ],
    [ rq_ok      => request  => 'ok' ],
    [ rq_no      => request  => 'no' ],
    [ rq_none    => request  => 'none' ],
    [ rq_str     => request  => 'str' ],
    [ rq_deep    => request  => 'sku.deeper' ],
    [ rq_whole   => request  => '.' ],
    [ gql        => request  => 'variables.productVariantId' ],
    [ gql_qty    => request  => 'variables.quantity' ],
    [ rq_name    => request  => 'name' ],
    [ rq_qty     => request  => 'qty' ],
    [ rq_arr     => request  => 'qty[0]' ],
    [ rs_sku     => response => 'data.item.sku' ],
    [ rs_name    => response => 'data.item.name' ],
    [ rs_price   => response => 'data.item.price' ],
    [ rs_items   => response => 'data.items' ],
    [ rs_batch   => response => 'responses.-1.body.items.-1.name' ],
    [ rs_bprice  => response => 'responses.-1.body.items.-1.prices.price' ],
    [ rs_bfirst  => response => 'responses.0.body.items.0.key' ],
    [ pg         => page     => 'product.sku' ],
);

my $HTTP = qq{
    retarget_secret $SECRET;
    retarget_redis 127.0.0.1:\$TEST_NGINX_REDIS_PORT;
} . join('', map { "    retarget_extract \$$_->[0] $_->[1] $_->[2];\n" } @VARS)
  . "    log_format extract escape=json '{\"uri\":\"\$request_uri\""
  . join('', map { ",\"$_->[0]\":\"\$$_->[0]\"" } @VARS) . "}';\n";

my $UP = 'http://127.0.0.1:$TEST_NGINX_UPSTREAM_PORT';
my $EVENT = 'retarget_event custom_x sku=$rq_sku order=$rs_sku name=$rs_name;';

my $SERVER = qq{
    retarget on;
    access_log logs/extract.log extract;

    location /api/ {
        $EVENT
        add_header X-Rq-Sku \$rq_sku;
        add_header X-Rs-Sku "[\$rs_sku]";
        proxy_pass $UP;
    }

    location /small/ {
        retarget_extract_max_size 1k;
        $EVENT
        proxy_pass $UP/api/;
    }

    location /spill/ {
        client_body_buffer_size 1k;
        $EVENT
        proxy_pass $UP/api/;
    }

    location /noevents/ {
        proxy_pass $UP/api/;
    }

    location /redir/ {
        $EVENT
        try_files /nonexistent \@up;
    }

    location \@up {
        $EVENT
        proxy_pass $UP;
    }
};

sub sect {
    my ($name, $conf, $code) = @_;
    Test::Retarget::Redis::section($name,
        { http_config => $HTTP, config => $SERVER, %{ $conf || {} } },
        {}, $code);
}

#--------------------------------------------------------------------------
# helpers
#--------------------------------------------------------------------------

my $LOG = servroot() . '/logs/extract.log';

# the access log's lines; a request's line may come a moment after its
# response (lingering close): log_lines() is taken before each request
my $Lines = 0;

sub log_lines {
    open my $fh, '<', $LOG or return 0;
    my @l = <$fh>;
    return scalar @l;
}

# the access log line of the last request, decoded
sub last_log {
    my @l;
    eventually(sub {
        open my $fh, '<', $LOG or return 0;
        @l = <$fh>;
        return @l > $Lines && $l[-1] =~ /\n\z/;
    });
    ok(@l > $Lines, 'the request was logged') or return {};
    my $v = eval { $JSON->decode($l[-1]) };
    ok($v, 'the access log line is JSON') or diag($@, $l[-1]);
    return $v || {};
}

# POST $body to $uri; checks that the upstream got it unchanged
sub post {
    my ($uri, $type, $body, %o) = @_;
    my @h = ("Content-Type: $type", @{ $o{headers} || [] });
    my %req = (method => 'POST', uri => $uri, headers => \@h);
    if ($o{chunks}) {
        my $size = int(length($body) / $o{chunks}) + 1;
        my $raw = '';
        for (my $i = 0; $i < length $body; $i += $size) {
            my $p = substr($body, $i, $size);
            $raw .= sprintf("%x\r\n%s\r\n", length $p, $p);
        }
        push @h, 'Transfer-Encoding: chunked';
        $req{body} = $raw . "0\r\n\r\n";
    } else {
        $req{body} = $body;
    }
    $Lines = log_lines();
    my $r = http_req(%req);
    is($r->{status}, 200, "POST $uri: 200") or diag($r->{error} // $r->{raw});
    my $len = length $body;
    is(($r->{headers}{'x-got-len'} || [])->[0], $len,
       "POST $uri: the upstream got $len bytes");
    is(($r->{headers}{'x-got-sha1'} || [])->[0], sha1_hex($body),
       "POST $uri: the upstream got the body unchanged");
    return $r;
}

# POST whose body comes a moment after the head, in pieces: nginx waits
# for it (the request suspended, then resumed)
sub slow_post {
    my ($uri, $type, @pieces) = @_;
    my $body = join '', @pieces;
    $Lines = log_lines();
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => server_port(), Proto => 'tcp', Timeout => 5)
        or return fail("connect: $!");
    print $s "POST $uri HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
             . "Content-Type: $type\r\nContent-Length: " . length($body)
             . "\r\n\r\n";
    for my $p (@pieces) {
        sleep 0.2;
        print $s $p;
    }
    my $raw = '';
    my $sel = IO::Select->new($s);
    while ($sel->can_read(5)) {
        my $n = sysread($s, $raw, 65536, length $raw);
        last unless $n;
    }
    close $s;
    like($raw, qr{^HTTP/1\.1 200 }, "slow POST $uri: 200");
    like($raw, qr/^X-Got-Sha1: \Q${\ sha1_hex($body)}\E\r$/m,
         "slow POST $uri: the upstream got the body unchanged");
}

sub get {
    my ($uri) = @_;
    $Lines = log_lines();
    my $r = http_req(uri => $uri);
    is($r->{status}, 200, "GET $uri: 200") or diag($r->{error} // $r->{raw});
    return $r;
}

# the stream's custom_x entries
sub stream_events {
    my $l = redis_cmd('XRANGE', 'rt:events', '-', '+');
    my @ev;
    for my $entry (ref $l ? @$l : ()) {
        my %f = @{ $entry->[1] };
        my $e = eval { $JSON->decode($f{e}) } || {};
        push @ev, $e if ($e->{type} // '') eq 'custom_x';
    }
    return @ev;
}

sub check_values {
    my ($got, $want, $name) = @_;
    for my $k (sort keys %$want) {
        is($got->{$k}, $want->{$k}, "$name: \$$k");
    }
}

my @RQ = map { $_->[0] } grep { $_->[1] eq 'request' } @VARS;
my @RS = map { $_->[0] } grep { $_->[1] eq 'response' } @VARS;

sub all_empty {
    my ($got, $names, $name) = @_;
    my @full = grep { ($got->{$_} // '') ne '' } @$names;
    is("@full", '', "$name: every value empty");
}

#--------------------------------------------------------------------------
# request bodies
#--------------------------------------------------------------------------

my $REQ_JSON = '{"sku":"S-1","items":[{"id":"a","q":1},{"id":"b"},'
             . '{"id":"c"}],"n":42,"price":19.99,"four":15.0000,"ok":true,'
             . '"no":false,"none":null,"str":"caf\u00e9 \"q\" \\\\ a\/b"}';

sect('JSON request body: nested objects, arrays, scalars', {}, sub {
    my $r = post('/api/echo', 'application/json', $REQ_JSON);
    is(($r->{headers}{'x-rq-sku'} || [])->[0], 'S-1',
       'the value is there when the response header goes out');
    is(($r->{headers}{'x-rs-sku'} || [])->[0], '[]',
       'a response value is not, yet');
    my $v = last_log();
    check_values($v, {
        rq_sku => 'S-1', rq_item => 'b', rq_last => 'c', rq_first => 'a',
        rq_past => '', rq_obj => '{"id":"a","q":1}',
        rq_items => '[{"id":"a","q":1},{"id":"b"},{"id":"c"}]',
        rq_n => '42', rq_price => '19.99', rq_four => '15', rq_ok => 'true',
        rq_no => 'false', rq_none => '', rq_str => "caf\x{e9} \"q\" \\ a/b",
        rq_deep => '', gql => '', rq_name => '', rq_qty => '',
    }, 'json');
    is_deeply(JSON::PP->new->decode($v->{rq_whole} // 'null'),
              JSON::PP->new->decode($REQ_JSON), '"." is the whole document');
    all_empty($v, \@RS, 'a text/plain response');

    # charset and +json types are JSON too
    post('/api/echo', 'application/json; charset=utf-8', '{"sku":"S-2"}');
    is(last_log()->{rq_sku}, 'S-2', 'application/json; charset=utf-8');
    post('/api/echo', 'application/vnd.api+json', '["x",{"sku":"S-3"}]');
    is(last_log()->{rq_sku}, '', 'a path into an array needs an index');
    post('/api/echo', 'text/plain', '{"sku":"S-4"}');
    is(last_log()->{rq_sku}, '', 'text/plain: not read');
    post('/api/echo', 'application/json', '{"sku":"S-5",');
    is(last_log()->{rq_sku}, '', 'unparsable JSON: empty');
    post('/api/echo', 'application/json',
         '{"sku":"S-6"}' . ('[' x 70) . (']' x 70));
    is(last_log()->{rq_sku}, '', 'trailing data: not one document, empty');
    post('/api/echo', 'application/json',
         '{"sku":"S-7","d":' . ('[' x 70) . (']' x 70) . '}');
    is(last_log()->{rq_sku}, '', 'nested deeper than 64: empty');
    post('/api/echo', 'application/json',
         '{"sku":"S-8","d":' . ('[' x 60) . (']' x 60) . '}');
    is(last_log()->{rq_sku}, 'S-8', 'nested 61 deep: parsed');
    post('/api/echo', 'application/json',
         '{"sku":"S-9","id":123456789012345678901234567890}');
    is(last_log()->{rq_sku}, 'S-9', 'an integer beyond 64 bits elsewhere');
    post('/api/echo', 'application/json',
         '{"sku":"S-10","name":"a\\u0000b"}');
    is(last_log()->{rq_sku}, 'S-10', 'a \\u0000 in another value');
    get('/api/echo');
    all_empty(last_log(), \@RQ, 'a GET without a body');

    ok(eventually(sub { grep { ($_->{sku} // '') eq 'S-1' } stream_events() }),
       'the event got the value: sku S-1 in the stream');
});

sect('GraphQL over JSON: variables', {}, sub {
    my $q = '{"query":"mutation AddItem($productVariantId: ID!, $quantity: '
          . 'Int!) { addItemToOrder(productVariantId: $productVariantId, '
          . 'quantity: $quantity) { id } }","variables":{"productVariantId":'
          . '"42","quantity":3},"operationName":"AddItem"}';
    post('/api/echo', 'application/json', $q);
    check_values(last_log(), { gql => '42', gql_qty => '3' }, 'graphql');
});

sect('url-encoded request body', {}, sub {
    my $body = 'sku=F-1&name=Salt+%26+Pepper+Bowl+100%25&qty=2'
             . '&qty%5B0%5D=7&name=second&empty=&bad=%zz%4';
    post('/api/echo', 'application/x-www-form-urlencoded', $body);
    check_values(last_log(), {
        rq_sku => 'F-1', rq_name => 'Salt & Pepper Bowl 100%',
        rq_qty => '2', rq_arr => '7', rq_item => '',
    }, 'urlencoded');
    post('/api/echo', 'application/x-www-form-urlencoded; charset=UTF-8',
         'qty=1&sku=F-2');
    is(last_log()->{rq_sku}, 'F-2', 'with a charset parameter');
    ok(eventually(sub { grep { ($_->{sku} // '') eq 'F-2' } stream_events() }),
       'sku F-2 in the stream');
});

sect('multipart request body', {}, sub {
    my $b = '----Form:Boundary?7MA4YWxk';
    my $body = "--$b\r\n"
             . "Content-Disposition: form-data; name=\"name\"; "
             . "filename=\"name.txt\"\r\nContent-Type: text/plain\r\n\r\n"
             . "FILE CONTENT\r\n"
             . "--$b\r\n"
             . "Content-Disposition: form-data; name=\"qty\"\r\n\r\n3\r\n"
             . "--$b\r\n"
             . "content-disposition: form-data; name=\"name\"\r\n"
             . "Content-Type: text/plain; charset=utf-8\r\n\r\n"
             . "Salt + Pepper 100%\r\n"
             . "--$b\r\n"
             . "Content-Disposition: form-data; name=sku\r\n\r\nM-1\r\n"
             . "--$b--\r\n";
    post('/api/echo', "multipart/form-data; boundary=\"$b\"", $body);
    check_values(last_log(), {
        rq_name => 'Salt + Pepper 100%', rq_qty => '3', rq_sku => 'M-1',
    }, 'multipart, quoted boundary, a file part skipped');

    my $b2 = 'XyZ123';
    post('/api/echo', "multipart/form-data; charset=utf-8; boundary=$b2",
         "preamble\r\n--$b2\r\nContent-Disposition: form-data; "
         . "name=\"sku\"\r\n\r\nM-2\r\n--$b2--");
    is(last_log()->{rq_sku}, 'M-2', 'unquoted boundary, a preamble');

    post('/api/echo', "multipart/form-data; boundary=$b2",
         "--$b2\r\nContent-Disposition: form-data; name=\"sku\"\r\n\r\nM-3");
    is(last_log()->{rq_sku}, '', 'a part cut before its delimiter: empty');
    post('/api/echo', 'multipart/form-data',
         "--$b2\r\nContent-Disposition: form-data; name=\"sku\"\r\n\r\nM-4"
         . "\r\n--$b2--");
    is(last_log()->{rq_sku}, '', 'no boundary parameter: empty');
    ok(eventually(sub { grep { ($_->{sku} // '') eq 'M-2' } stream_events() }),
       'sku M-2 in the stream');
});

sect('request bodies: spilled, chunked, too large', {}, sub {
    my $pad = 'p' x 10_000;
    my $body = qq{{"pad":"$pad","sku":"T-1"}};
    mark_error_log();
    post('/spill/echo', 'application/json', $body);
    is(last_log()->{rq_sku}, 'T-1', 'read back from the temporary file');
    like(error_log_since_mark(), qr/buffered to a temporary file/,
         'the body was in a temporary file');

    post('/api/echo', 'application/json', '{"items":[{"id":"x"}],"sku":"C-1"}',
         chunks => 3);
    is(last_log()->{rq_sku}, 'C-1', 'a chunked request body');

    post('/spill/echo', 'application/json', $body, chunks => 7);
    is(last_log()->{rq_sku}, 'T-1', 'chunked and spilled');

    mark_error_log();
    slow_post('/api/echo', 'application/json', '{"items":[],', '"sku":"W-1"}');
    is(last_log()->{rq_sku}, 'W-1', 'a body that comes later: waited for');
    like(error_log_since_mark(), qr/request body read, phases resume/,
         'the request waited for its body and went on');
    slow_post('/spill/echo', 'application/json', '{"pad":"' . $pad,
              $pad . '","x":"', '","sku":"W-2"}');
    is(last_log()->{rq_sku}, 'W-2', 'later, and spilled');

    # the client goes away while the module waits for its body
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
        PeerPort => server_port(), Proto => 'tcp', Timeout => 5);
    print $s "POST /api/echo HTTP/1.1\r\nHost: localhost\r\n"
             . "Content-Type: application/json\r\nContent-Length: 100\r\n"
             . "\r\n{\"sku\":";
    sleep 0.3;
    close $s;
    sleep 0.3;

    post('/redir/echo', 'application/json', '{"sku":"I-1"}');
    is(last_log()->{rq_sku}, 'I-1', 'after an internal redirect (try_files)');

    my $big = '{"sku":"L-1","pad":"' . ('p' x 1100) . '"}';
    post('/small/echo', 'application/json', $big);
    is(last_log()->{rq_sku}, '', 'over retarget_extract_max_size: empty');
    post('/small/echo', 'application/json', $big, chunks => 4);
    is(last_log()->{rq_sku}, '', 'chunked, over the max size: empty');
    post('/small/echo', 'application/json', '{"sku":"L-2"}');
    is(last_log()->{rq_sku}, 'L-2', 'under the max size: read');

    my @skus = map { $_->{sku} // '' } stream_events();
    ok(eventually(sub { grep { ($_->{sku} // '') eq 'L-2' } stream_events() }),
       'sku L-2 in the stream');
    @skus = map { $_->{sku} // '' } stream_events();
    ok(!grep({ $_ eq 'L-1' } @skus), 'no L-1: over the max size');
});

section_h2: {
    last section_h2 unless `curl --version 2>/dev/null` =~ /HTTP2/;
    sect('HTTP/2: request and response bodies', { listen_opts => 'http2' },
    sub {
        for my $chunked (0, 1) {
            $Lines = log_lines();
            my $r = http_req(method => 'POST', uri => '/spill/json',
                curl => '--http2-prior-knowledge'
                        . ($chunked ? ' -H Transfer-Encoding:chunked' : ''),
                headers => ['Content-Type: application/json'],
                body => '{"sku":"H2-1","pad":"' . ('h' x 5000) . '"}');
            is($r->{status}, 200, "HTTP/2 POST ($chunked): 200")
                or diag($r->{error});
            like($r->{protocol} // '', qr{^HTTP/2}, 'over HTTP/2');
            my $v = last_log();
            is($v->{rq_sku}, 'H2-1', "HTTP/2 ($chunked): the request value");
            is($v->{rs_sku}, 'R-1', "HTTP/2 ($chunked): the response value");
        }
    });
}

#--------------------------------------------------------------------------
# response bodies
#--------------------------------------------------------------------------

sect('JSON response bodies', {}, sub {
    post('/api/json', 'application/json', '{"sku":"Q-1"}');
    check_values(last_log(), {
        rs_sku => 'R-1', rs_name => 'Bowl', rs_price => '15.5',
        rs_items => '[{"sku":"A","quantity":1},{"sku":"B","quantity":2}]',
        rq_sku => 'Q-1',
    }, 'response');
    ok(eventually(sub { grep { ($_->{order} // '') eq 'R-1' }
                        stream_events() }),
       'the event got the response value: order R-1 in the stream');
    my ($e) = grep { ($_->{order} // '') eq 'R-1' } stream_events();
    is_deeply([ @{ $e || {} }{qw(sku order name)} ], [qw(Q-1 R-1 Bowl)],
              'stream: sku from the request, order and name from the '
              . 'response');

    get('/api/vnd');
    is(last_log()->{rs_sku}, 'R-1', 'a +json type with a charset');
    get('/api/chunked');
    is(last_log()->{rs_sku}, 'R-1', 'a response in several chunks');
    get('/api/batch');
    check_values(last_log(), {
        rs_batch => 'Second', rs_bprice => '1500', rs_bfirst => 'k1',
    }, 'a batch response, -1 for the last');
    get('/noevents/json');
    is(last_log()->{rs_sku}, '', 'no events in the location: not copied');
});

sect('responses that give no values', {}, sub {
    mark_error_log();
    get('/api/textjson');
    all_empty(last_log(), \@RS, 'text/plain');
    get('/api/gzip');
    all_empty(last_log(), \@RS, 'gzip encoded');
    get('/api/big');
    all_empty(last_log(), \@RS, 'over the max size, Content-Length');
    get('/api/bigchunked');
    all_empty(last_log(), \@RS, 'over the max size, chunked');
    get('/api/notjson');
    all_empty(last_log(), \@RS, 'not parsable');
    my $log = error_log_since_mark();
    like($log, qr/response not copied, type "text\/plain"/,
         'debug: not copied, the type');
    like($log, qr/response not copied, "gzip" encoded/,
         'debug: not copied, encoded');
    like($log, qr/response not copied, \d+ bytes, more than 131072/,
         'debug: not copied, too large');
    like($log, qr/response over 131072 bytes, not used/,
         'debug: too large while copied');

    my $r = get('/api/big');
    is(length $r->{body}, length $RESP_BIG, 'the client gets the large body');
    $r = get('/api/bigchunked');
    is($r->{body}, $RESP_BIG, 'and the chunked one, whole');
    $r = get('/api/chunked');
    is($r->{body}, $RESP_JSON, 'a copied response reaches the client whole');
});

sect('page source: no retarget_page_json, empty', {}, sub {
    get('/api/json');
    is(last_log()->{pg}, '', '$pg is empty');
});

# "page" extracts read the object retarget_page_json names
{
    Test::Retarget::Redis::section('page source: retarget_page_json', {
        http_config => $HTTP,
        config => q{
            retarget on;
            access_log logs/extract.log extract;
            location /p/ {
                retarget_page_json id=data;
                retarget_event custom_x sku=$pg;
            }
        },
    }, { 'p/a.html' => '<html><head><script type="application/json" '
                       . 'id="data">{"product":{"sku":"PG-1","offers":[]}}'
                       . "</script></head><body>x</body></html>\n" }, sub {
        $Lines = log_lines();
        my $r = http_req(uri => '/p/a.html', headers => ['Accept: text/html']);
        is($r->{status}, 200, 'GET /p/a.html: 200');
        is(last_log()->{pg}, 'PG-1', 'the embedded object\'s product.sku');
        ok(eventually(sub { grep { ($_->{sku} // '') eq 'PG-1' }
                            stream_events() }),
           'sku PG-1 in the stream');
    });
}

#--------------------------------------------------------------------------
# configuration errors
#--------------------------------------------------------------------------

for my $bad (
    [ 'retarget_extract $x body sku;', qr/invalid source "body"/ ],
    [ 'retarget_extract x request sku;', qr/invalid variable name "x"/ ],
    [ "retarget_extract \$x request sku;\n retarget_extract \$x request y;",
      qr/duplicate "x" variable|already defined/ ],
    [ "map \$uri \$x { default 1; }\n retarget_extract \$x request y;",
      qr/variable "\$x" is already defined/ ],
    [ 'retarget_extract_max_size 9m;', qr/must be at most 8m/ ],
    )
{
    my ($conf, $re) = @$bad;
    Test::Retarget::write_nginx_conf({ http_config => qq{
        retarget_secret $SECRET;
        $conf
    }, config => 'location / { retarget on; }' });
    my ($status, $out) = Test::Retarget::nginx_config_test();
    ok($status != 0, "nginx -t fails: $conf");
    like($out, $re, "the message: $conf");
}

done_testing();
