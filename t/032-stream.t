# Large pages stream through the filter: nothing is buffered whole, and
# producers' buffers are released (a held buffer would stall these).
use lib 't/lib';
use Test::Retarget;
use IO::Socket::INET;
use POSIX ();

my $MB = 1024 * 1024;
my $page = "<html><body>\n" . ("<p>" . ("z" x 92) . "</p>\n") x (int($MB / 100)) . "</body></html>\n";

write_file('big.html', $page);

my $port = $ENV{TEST_NGINX_RAND_PORT_1};
my $go = servroot() . '/go';
unlink $go;

# An upstream that sends the first half of the page, then waits until the
# client has seen it (the test creates $go), then sends the rest.  If the
# filter held the page back, the client would never see the first half.
my $backend = fork();
die "fork: $!" unless defined $backend;
if ($backend == 0) {
    my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
                                    Listen => 5, ReuseAddr => 1) or POSIX::_exit(1);
    my $deadline = time + 30;
    while (my $c = $srv->accept) {
        local $/ = "\r\n\r\n";
        my $req = <$c>;
        my $half = int(length($page) / 2);
        print $c "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n";
        print $c substr($page, 0, $half);
        if ($req =~ m{^GET /wait}) {
            select(undef, undef, undef, 0.02) until -e $go || time > $deadline;
        }
        print $c substr($page, $half);
        close $c;
    }
    POSIX::_exit(0);
}

start_nginx({
    http_config => q{
        retarget_secret 0123456789abcdef0123456789abcdef;
        retarget_notice $TEST_NGINX_SERVROOT/../data/n.html;
    },
    config => qq{
        retarget on;
        location = /big.html { output_buffers 1 32k; }
        location /up/ {
            proxy_pass http://127.0.0.1:$port/;
            proxy_buffering on;
            proxy_buffers 2 4k;
            proxy_buffer_size 4k;
            proxy_busy_buffers_size 4k;
            proxy_max_temp_file_size 0;
        }
        location /wait {
            proxy_pass http://127.0.0.1:$port;
            proxy_buffering off;
        }
    },
});

(my $expected = $page) =~ s{</body>}{[N]</body>};

my $res = http_req(uri => '/big.html', timeout => 20);
is($res->{status}, 200, 'static 1 MB page, one 32k output buffer: 200');
ok($res->{body} eq $expected, 'static 1 MB page: whole, notice before </body>');

$res = http_req(uri => '/up/x', timeout => 20);
ok($res->{body} eq $expected,
   'proxied 1 MB page through 2 x 4k buffers without temp files: whole');

# The streaming check, with a raw socket: read the first half while the
# upstream is still waiting for us.
my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => server_port(),
                              Timeout => 10) or die "connect: $!";
print $c "GET /wait HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
my ($got, $buf) = ('', '');
my $need = int(length($page) / 2) - 64 * 1024;
my $deadline = time + 10;
while (length($got) < $need && time < $deadline) {
    my $n = sysread($c, $buf, 65536);
    last unless $n;
    $got .= $buf;
}
ok(length($got) >= $need,
   'the first half reaches the client before the upstream sends the rest');
open my $fh, '>', $go or die $!;
close $fh;
while (sysread($c, $buf, 65536)) { $got .= $buf; }
like($got, qr{\[N\]</body></html>\n}, 'then the rest, with the notice');

stop_nginx();
kill 'TERM', $backend;
waitpid($backend, 0);
check_error_log_clean();
done_testing();
