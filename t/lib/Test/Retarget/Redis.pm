package Test::Retarget::Redis;

# Helpers shared by the tests that look into Redis: signed visitor
# cookies, today's counter key, hashes, and waiting for nginx's link.

use strict;
use warnings;

use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64url);
use Time::HiRes qw(sleep time);
use Test::More;
use Test::Retarget qw(redis_cmd start_nginx stop_nginx check_error_log_clean
                      error_log_since_mark write_file);

use Exporter qw(import);

our @EXPORT = qw(signed_cookie signed_consent consent_cookie vid today hash
                 eventually nginx_clients wait_up settle quit section
                 nginx_started);

# "<vid>.<sig>" as the module signs it: the first 16 bytes of
# HMAC-SHA256 over the id, base64url
sub signed_cookie {
    my ($vid, $secret) = @_;
    return "$vid." . encode_base64url(substr(hmac_sha256($vid, $secret), 0, 16));
}

# "<choice>.<sig>", the consent cookie's value as the module signs it:
# HMAC-SHA256 over "consent:<choice>", first 16 bytes, base64url.  The
# secret defaults to the one most tests configure.
sub signed_consent {
    my ($choice, $secret) = @_;
    $secret //= '0123456789abcdef0123456789abcdef';
    return "$choice."
         . encode_base64url(substr(hmac_sha256("consent:$choice", $secret),
                                   0, 16));
}

# "rt_vid_consent=<signed choice>"
sub consent_cookie { 'rt_vid_consent=' . signed_consent(@_) }

# a valid visitor id (22 of [A-Za-z0-9_-]) per name
sub vid { my ($n) = @_; return substr("V${n}_" . ('x' x 22), 0, 22) }

# the UTC day of the daily counters
sub today {
    my @t = gmtime;
    return sprintf '%04d%02d%02d', $t[5] + 1900, $t[4] + 1, $t[3];
}

sub hash {
    my $l = redis_cmd('HGETALL', $_[0]);
    return { ref $l ? @$l : () };
}

sub eventually {
    my ($cond, $timeout) = @_;
    my $end = time + ($timeout // 5);
    while (time < $end) {
        return 1 if $cond->();
        sleep 0.05;
    }
    return $cond->();
}

# nginx's Redis connections, from CLIENT LIST (ours and MONITORs left out)
sub nginx_clients {
    my $list = redis_cmd('CLIENT', 'LIST');
    my @c;
    for my $line (split /\r?\n/, $list // '') {
        my %f = map { split /=/, $_, 2 } split ' ', $line;
        next if ($f{cmd} // '') =~ /^client/ || ($f{flags} // '') =~ /O/;
        push @c, \%f;
    }
    return @c;
}

# A worker's link is up once its handshake (ending with PING) has been
# answered; with old => [ids], a connection other than those is wanted
# and those must be gone (a reload).
sub wait_up {
    my (%o) = @_;
    my %old = map { $_ => 1 } @{ $o{old} || [] };
    my $ok = eventually(sub {
        my @c = nginx_clients();
        return 0 if grep { $old{ $_->{id} } } @c;
        return scalar grep { ($_->{cmd} // 'NULL') ne 'NULL' } @c;
    }, 10);
    sleep 0.1;      # the worker reads the PING reply
    return $ok;
}


# the worker's counters reach Redis at most a second later
sub settle { sleep($_[0] // 1.5) }

my $Stopped;

# stops nginx once (QUIT); later calls return the first result
sub quit {
    return $Stopped if defined $Stopped;
    $Stopped = stop_nginx() // 0;
    return $Stopped;
}

# starts nginx (again) within a section: quit() will stop it
sub nginx_started {
    my ($conf) = @_;
    undef $Stopped;
    return start_nginx($conf);
}

# A subtest against a fresh nginx and an empty Redis: $pages (name =>
# content) are written, nginx starts with $conf, the link comes up, $code
# runs, nginx quits and its error log must be clean.
sub section {
    my ($name, $conf, $pages, $code) = @_;
    subtest $name => sub {
        redis_cmd('FLUSHALL');
        write_file($_, $pages->{$_}) for sort keys %$pages;
        my $failed = grep { !$_ } Test::More->builder->summary;
        ok(nginx_started($conf), "$name: nginx started") or return;
        ok(wait_up(), "$name: redis link up");
        if (error_log_since_mark() =~ /(.*exited on signal.*)/) {
            fail("$name: the worker crashed: $1");
            quit();
            return;
        }
        $code->();
        is(quit(), 1, "$name: nginx exited on QUIT");
        check_error_log_clean($name);
        if (grep({ !$_ } Test::More->builder->summary) > $failed) {
            diag(Test::Retarget::log_tail_text());
        }
    };
}

1;
