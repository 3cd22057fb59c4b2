package Test::Retarget::FakeRedis;

# A fake Redis server for the tests of a hostile or broken Redis
# (t/076-redis-hostile.t): real Redis cannot misbehave on purpose.
#
#   my $fake = Test::Retarget::FakeRedis->start(port => $port,
#                                                mode => 'extra');
#   ... nginx with "retarget_redis 127.0.0.1:$port" ...
#   $fake->connections;     # connections accepted so far
#   $fake->stop;
#
# It is a forked child of the test (like the harness' other backends)
# that listens on 127.0.0.1:$port and forks one handler per connection,
# so that a slow handler (drip) never holds up the next connection.  Each
# handler passes the module's handshake like Redis does (AUTH and SELECT
# answered +OK, PING answered +PONG), and then answers every command
# according to its mode:
#
#   sane          like an empty Redis: arrays empty, gets nil, writes :1
#   extra         the sane answer and one more reply nobody asked for
#   huge_array    "*1000000000" (a 14-byte reply declaring 10^9 elements)
#   wide          "*1000000" and a million ":1" (under the element limit,
#                 over the size of a whole reply)
#   huge_bulk     "$2000000000" and then as much data as it can send
#                 (up to 64 MB)
#   big_bulk      a complete bulk string of 100 MB
#   deep          arrays nested 20 deep
#   drip          a 27-byte reply (a bulk string), one byte every 100 ms
#   reset         half a reply, then a TCP reset (SO_LINGER 0)
#   garbage       a reply of an unknown type ("?garbage")
#   pong_garbage  +PONG to the handshake's PING and garbage right after
#                 it, before any other command
#   error_reply   every command answered with $HOSTILE_ERROR, an error
#                 reply of control bytes, bytes >= 0x80 and 100 more bytes
#   ping_error    the handshake's PING answered with $HOSTILE_ERROR
#   odd_counts    sane, but every PFCOUNT answered with the next of
#                 @ODD_COUNTS (a string, a negative, the largest integer,
#                 2^53, 12, an error, an array, nil, a status) and HGETALL with a
#                 hash of odd values (t/120-people.t: retarget_status)
#   track_hostile sane, but CLIENT TRACKING is answered +OK and CLIENT ID
#                 :7 (the module then opens its invalidation link), and a
#                 SUBSCRIBE with its confirmation and then a "message" of
#                 one element (hiredis' pub/sub dispatcher asserts on it)
#
# Every accepted connection is appended to <dir>/fake-redis-<port>.log
# (one line each), which connections() counts.  stop() ends the listener,
# which ends its handlers (by their pids) before it exits.

use strict;
use warnings;

use IO::Socket::INET;
use POSIX ();
use Socket qw(SOL_SOCKET SO_LINGER);
use Time::HiRes qw(sleep time);

my %MODES = map { $_ => 1 } qw(sane extra huge_array wide huge_bulk big_bulk
                                deep drip reset garbage pong_garbage
                                error_reply ping_error track_hostile
                                odd_counts);

# odd_counts: the PFCOUNT replies, in turn, and the HGETALL reply
our @ODD_COUNTS = ("\$3\r\nabc\r\n", ":-5\r\n", ":9223372036854775807\r\n",
                   ":9007199254740992\r\n", ":12\r\n",
                   "-WRONGTYPE Operation against a key holding the wrong "
                   . "kind of value\r\n", "*2\r\n:1\r\n:2\r\n", "\$-1\r\n",
                   "+OK\r\n");
sub bulk { '$' . length($_[0]) . "\r\n$_[0]\r\n" }
our $ODD_HASH = "*12\r\n" . bulk('impressions:A') . bulk('9' x 23)
              . bulk('clicks:A') . ":7\r\n"
              . bulk('revenue:A') . bulk('12.5x')
              . bulk('buyers:A') . "*1\r\n:1\r\n"
              . bulk('conversions:A') . bulk('-3')
              . bulk('buyer_revenue:A') . bulk('1.25');

# An error line a hostile Redis may send (RESP ends it at "\r\n" only):
# a terminal escape, a bell, a lone carriage return, bytes >= 0x80, a
# quote, a backslash, and far more than a log line shows
our $HOSTILE_ERROR = "ERR \e[31mred\a and\rmore \xff\xfe \"q\" \\ "
                     . ('A' x 100);

sub start {
    my ($class, %o) = @_;
    my $mode = $o{mode} // 'sane';
    die "FakeRedis: unknown mode $mode\n" unless $MODES{$mode};
    my $port = $o{port} or die "FakeRedis: no port\n";
    my $dir = $o{dir} // Test::Retarget::servroot();
    my $log = "$dir/fake-redis-$port.log";
    unlink $log;

    my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                    LocalPort => $port, Proto => 'tcp',
                                    Listen => 128, ReuseAddr => 1)
        or die "FakeRedis: cannot listen on $port: $!\n";

    my $pid = fork;
    die "FakeRedis: fork: $!\n" unless defined $pid;
    if ($pid) {
        close $srv;
        return bless { pid => $pid, port => $port, mode => $mode,
                       log => $log, owner => $$ }, $class;
    }

    # the listener
    my %kids;
    my $done = 0;
    $SIG{INT} = 'DEFAULT';
    $SIG{PIPE} = 'IGNORE';
    $SIG{TERM} = sub { $done = 1 };
    $SIG{CHLD} = sub {
        while ((my $k = waitpid(-1, POSIX::WNOHANG())) > 0) { delete $kids{$k} }
    };
    eval {
        while (!$done) {
            my $c = $srv->accept or next;
            if (open my $fh, '>>', $log) {
                print {$fh} time, " accept\n";
                close $fh;
            }
            my $kid = fork;
            if (!defined $kid) { close $c; next }
            if (!$kid) {
                close $srv;
                $SIG{TERM} = 'DEFAULT';
                $SIG{CHLD} = 'DEFAULT';
                eval { serve($c, $mode) };
                POSIX::_exit(0);
            }
            $kids{$kid} = 1;
            close $c;
        }
    };
    kill 'KILL', $_ for keys %kids;
    POSIX::_exit(0);
}

sub port { $_[0]{port} }

sub connections {
    my ($self) = @_;
    open my $fh, '<', $self->{log} or return 0;
    my @l = <$fh>;
    return scalar @l;
}

sub stop {
    my ($self) = @_;
    return unless $self->{pid};
    kill 'TERM', $self->{pid};
    Test::Retarget::wait_child($self->{pid}, 5)
        or do { kill 'KILL', $self->{pid}; Test::Retarget::wait_child($self->{pid}, 5) };
    delete $self->{pid};
}

# a test that dies half-way leaves no listener behind
sub DESTROY { $_[0]->stop if $_[0]{pid} && $$ == $_[0]{owner} }

# The first complete command (an array of bulk strings) taken from the
# front of $$buf, as a list ref; undef when it is still incomplete.
sub take_command {
    my ($buf) = @_;
    return undef unless $$buf =~ /\A\*(\d+)\r\n/;
    my ($n, $pos) = ($1, $+[0]);
    my @args;
    for (1 .. $n) {
        return undef unless substr($$buf, $pos) =~ /\A\$(\d+)\r\n/;
        my $len = $1;
        $pos += $+[0];
        return undef if $pos + $len + 2 > length $$buf;
        push @args, substr($$buf, $pos, $len);
        $pos += $len + 2;
    }
    substr($$buf, 0, $pos, '');
    return \@args;
}

# What an empty Redis would answer
sub sane_reply {
    my ($name) = @_;
    return "*0\r\n" if $name =~ /^(?:HGETALL|SMEMBERS|HMGET|MGET|KEYS|ZRANGE
                                     |ZREVRANGE|ZRANGEBYSCORE|LRANGE|XRANGE
                                     |XREVRANGE|SSCAN|HSCAN|SCAN|EXEC)$/x;
    return "\$-1\r\n" if $name =~ /^(?:GET|HGET|LPOP|RPOP|SPOP|GETDEL)$/;
    return "+OK\r\n" if $name =~ /^(?:SET|MULTI|HMSET|RENAME|FLUSHALL)$/;
    return ":1\r\n";
}

sub send_all {
    my ($c, $data) = @_;
    while (length $data) {
        my $n = syswrite($c, $data);
        return 0 unless defined $n && $n > 0;
        substr($data, 0, $n, '');
    }
    return 1;
}

sub serve {
    my ($c, $mode) = @_;
    binmode $c;
    my $buf = '';
    my $up = 0;
    my $odd = 0;
    while (1) {
        my $n = sysread($c, my $chunk, 65536);
        return unless $n;
        $buf .= $chunk;
        my $out = '';
        while (defined(my $cmd = take_command(\$buf))) {
            my $name = uc($cmd->[0] // '');
            if ($mode eq 'track_hostile') {
                my $sub = uc($cmd->[1] // '');
                if ($name eq 'CLIENT' && $sub eq 'ID') {
                    $out .= ":7\r\n";
                    next;
                }
                if ($name eq 'CLIENT' && $sub eq 'TRACKING') {
                    $out .= "+OK\r\n";
                    next;
                }
                if ($name eq 'SUBSCRIBE') {
                    my $ch = $cmd->[1] // '';
                    $out .= "*3\r\n\$9\r\nsubscribe\r\n\$" . length($ch)
                          . "\r\n$ch\r\n:1\r\n*1\r\n\$7\r\nmessage\r\n";
                    next;
                }
            }
            if (!$up) {
                if ($name eq 'PING' && $mode eq 'ping_error') {
                    $out .= "-$HOSTILE_ERROR\r\n";
                } elsif ($name eq 'PING') {
                    $up = 1;
                    $out .= "+PONG\r\n";
                    $out .= "?garbage\r\n" if $mode eq 'pong_garbage';
                } else {
                    $out .= "+OK\r\n";      # AUTH, SELECT
                }
                next;
            }
            my $sane = sane_reply($name);
            if ($mode eq 'odd_counts' && $name eq 'PFCOUNT') {
                $out .= $ODD_COUNTS[$odd++ % @ODD_COUNTS];
            } elsif ($mode eq 'odd_counts' && $name eq 'HGETALL') {
                $out .= $ODD_HASH;
            } elsif ($mode eq 'sane' || $mode eq 'pong_garbage'
                || $mode eq 'odd_counts'
                || $mode eq 'track_hostile')
            {
                $out .= $sane;
            } elsif ($mode eq 'extra') {
                $out .= $sane . ":1\r\n";
            } elsif ($mode eq 'huge_array') {
                $out .= "*1000000000\r\n";
            } elsif ($mode eq 'deep') {
                $out .= ("*1\r\n" x 20) . ":1\r\n";
            } elsif ($mode eq 'error_reply') {
                $out .= "-$HOSTILE_ERROR\r\n";
            } elsif ($mode eq 'garbage') {
                $out .= "?garbage\r\n";
            } elsif ($mode eq 'wide') {
                send_all($c, $out . "*1000000\r\n" . (":1\r\n" x 1000000))
                    or return;
                $out = '';
            } elsif ($mode eq 'huge_bulk') {
                send_all($c, $out . "\$2000000000\r\n") or return;
                my $block = 'x' x 65536;
                for (1 .. 1024) { send_all($c, $block) or return }
                $out = '';
            } elsif ($mode eq 'big_bulk') {
                my $len = 100 * 1024 * 1024;
                send_all($c, $out . "\$$len\r\n") or return;
                my $block = 'y' x 65536;
                for (1 .. $len / 65536) { send_all($c, $block) or return }
                send_all($c, "\r\n") or return;
                $out = '';
            } elsif ($mode eq 'drip') {
                for my $byte (split //, $out . "\$20\r\n" . ('d' x 20) . "\r\n") {
                    send_all($c, $byte) or return;
                    sleep 0.1;
                }
                $out = '';
            } elsif ($mode eq 'reset') {
                send_all($c, $out . "*2\r\n\$5\r\nhel");
                setsockopt($c, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
                close $c;
                return;
            }
        }
        send_all($c, $out) or return if length $out;
    }
}

1;
