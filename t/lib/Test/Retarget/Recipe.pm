package Test::Retarget::Recipe;

# Helpers of the recipe tests (t/11x-recipe-*.t): run a configuration of
# conf-examples/ as it is, against a fake shop of t/fake/, and drive a
# visitor (a browser-like cookie jar holding both the shop's session cookie
# and the module's) through it.
#
# recipe_conf(FILE) reads conf-examples/FILE, a complete nginx.conf, and
# replaces only what an operator is told to change (the lines marked
# CHANGE: secret, Redis, upstream, listen) and the system paths (module,
# pid, logs, temp files, user); every replacement must match exactly once,
# so a recipe that drifts from what the test assumes fails loudly instead
# of being tested half.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use IO::Socket::INET;
use Time::HiRes qw(sleep time);
use Test::More;
use Test::Retarget qw(http_req servroot server_port redis_cmd stop_nginx
                      mark_error_log check_error_log_clean);
use Test::Retarget::Redis qw(signed_consent eventually);

use Exporter qw(import);

our @EXPORT = qw($SECRET $WAIT recipe_conf start_recipe stop_recipe start_fake
                 stop_fake shopper banner_of banner_items banner_total banner_cta
                 cart_lines money_of money_at);

our $SECRET = '0123456789abcdef0123456789abcdef';

# seconds to wait for the worker's writes to reach Redis (longer under
# valgrind and ASan)
our $WAIT = ($ENV{TEST_RETARGET_VALGRIND} || $ENV{TEST_RETARGET_ASAN}) ? 20 : 5;

my $REPO = abs_path(dirname(abs_path(__FILE__)) . '/../../../..');
my $Fake;                     # pid of the fake shop

#--------------------------------------------------------------------------
# the configuration
#--------------------------------------------------------------------------

sub recipe_conf {
    my ($file) = @_;
    my $path = "$REPO/conf-examples/$file";
    open my $fh, '<', $path or die "cannot read $path: $!\n";
    my $text = do { local $/; <$fh> };
    my $root = servroot();
    my $tmp = "$root/tmp";
    my $loads = join '', map { "load_module $_;\n" }
                Test::Retarget::module_paths();
    # valgrind follows one process (as the harness does)
    my $master = $ENV{TEST_RETARGET_VALGRIND} ? 'off' : 'on';
    my @subs = (
        [ qr{^load_module \S+;\n}m,
          "${loads}daemon off;\nmaster_process $master;\n" ],
        [ qr{^user \S+;\n}m, '' ],
        # one worker: a visitor's requests reach Redis in their order
        [ qr{^worker_processes auto;$}m, 'worker_processes 1;' ],
        [ qr{^pid /run/nginx\.pid;$}m, 'pid logs/nginx.pid;' ],
        [ qr{^error_log /var/log/nginx/error\.log;$}m,
          'error_log logs/error.log debug;' ],
        [ qr{^(\s*)access_log\s+/var/log/nginx/access\.log;$}m,
          "\$1access_log logs/access.log;\n"
          . join('', map { "\$1${_}_temp_path $tmp/$_;\n" }
                     qw(client_body proxy fastcgi uwsgi scgi)) ],
        [ qr{retarget_secret CHANGE-ME\S*;}, "retarget_secret $SECRET;" ],
        [ qr{retarget_redis 127\.0\.0\.1:6379;},
          'retarget_redis 127.0.0.1:' . $ENV{TEST_NGINX_REDIS_PORT} . ';' ],
        [ qr{server 127\.0\.0\.1:8080;},
          'server 127.0.0.1:' . $ENV{TEST_NGINX_BACKEND_PORT} . ';' ],
        [ qr{listen 80;}, 'listen 127.0.0.1:' . server_port() . ';' ],
    );
    for my $s (@subs) {
        my ($re, $to) = @$s;
        my $n = () = $text =~ /$re/g;
        die "recipe $file: $re matches $n times, not once\n" unless $n == 1;
        $text =~ s{$re}{
            my @c = ($1);
            (my $t = $to) =~ s/\$1/defined $c[0] ? $c[0] : ''/ge;
            $t
        }e;
    }
    return $text;
}

# writes the configuration and starts nginx; true once it accepts
sub start_recipe {
    my ($conf) = @_;
    Test::Retarget::ensure_servroot();
    open my $fh, '>', servroot() . '/conf/nginx.conf' or die "conf: $!\n";
    print {$fh} $conf;
    close $fh;
    mark_error_log();
    my ($ok, $why) = Test::Retarget::launch_nginx();
    diag($why . "\n" . Test::Retarget::log_tail_text()) unless $ok;
    return $ok;
}

sub stop_recipe {
    my ($label) = @_;
    ok(stop_nginx(), "$label: nginx exited on QUIT");
    check_error_log_clean($label);
}

#--------------------------------------------------------------------------
# the fake shop
#--------------------------------------------------------------------------

sub start_fake {
    my ($name) = @_;
    my $port = $ENV{TEST_NGINX_BACKEND_PORT};
    $Fake = Test::Retarget::spawn(
        argv => [ 'python3', "$REPO/t/fake/$name.py", $port ],
        out  => servroot() . "/logs/fake-$name.log");
    my $up = eventually(sub {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Proto => 'tcp');
        return $s ? 1 : 0;
    }, 10);
    die "the fake $name did not listen on $port\n" unless $up;
}

sub stop_fake {
    return unless $Fake;
    Test::Retarget::stop_child($Fake, 'TERM', 5);
    undef $Fake;
}

END { local $?; stop_fake() }   # keep the exit status of the test

#--------------------------------------------------------------------------
# a visitor
#--------------------------------------------------------------------------

# shopper(): a cookie jar with the notice already acknowledged (so that
# the page ends with the reminder, not with the notice)
sub shopper {
    my $jar = { rt_vid_consent => signed_consent('ack', $SECRET) };
    return bless { jar => $jar }, 'Test::Retarget::Recipe::Shopper';
}

package Test::Retarget::Recipe::Shopper;

use Test::Retarget qw(http_req server_port);

sub cookie { $_[0]{jar}{$_[1]} }

sub vid { my $c = $_[0]{jar}{rt_vid} // ''; return (split /\./, $c)[0] }

sub forget { delete $_[0]{jar}{$_[1]} }

# req(METHOD, URI, body => B, type => T, headers => [...], direct => 1):
# direct goes to the fake shop itself, with the shop's cookies only (what
# the shop says, not through nginx)
sub req {
    my ($self, $method, $uri, %o) = @_;
    my $jar = $self->{jar};
    my @names = sort grep { !$o{direct} || !/^rt_vid/ } keys %$jar;
    my @h = ('Accept: ' . ($o{accept} // '*/*'),
             @{ $o{headers} || [] });
    push @h, 'Cookie: ' . join('; ', map { "$_=$jar->{$_}" } @names) if @names;
    push @h, "Content-Type: $o{type}" if $o{type};
    my $r = http_req(method => $method, uri => $uri, headers => \@h,
                     (defined $o{body} ? (body => $o{body}) : ()),
                     ($o{direct} ? (port => $ENV{TEST_NGINX_BACKEND_PORT})
                                 : ()));
    for my $sc (@{ $r->{headers}{'set-cookie'} || [] }) {
        my ($pair, @attrs) = split /;\s*/, $sc;
        my ($n, $v) = split /=/, $pair, 2;
        if (grep { /^max-age=0$/i } @attrs) { delete $jar->{$n} }
        else { $jar->{$n} = $v }
    }
    return $r;
}

sub page { my ($s, $uri) = @_; $s->req(GET => $uri, accept => 'text/html,application/xhtml+xml') }

sub post_json {
    my ($s, $uri, $obj, %o) = @_;
    return $s->req(POST => $uri, body => JSON::PP->new->canonical->encode($obj),
                   type => 'application/json', %o);
}

sub post_form {
    my ($s, $uri, @kv) = @_;
    my @p;
    while (my ($k, $v) = splice @kv, 0, 2) {
        push @p, join '=', map { my $x = $_;
            $x =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge; $x } $k, $v;
    }
    return $s->req(POST => $uri, body => join('&', @p),
                   type => 'application/x-www-form-urlencoded; charset=UTF-8',
                   headers => ['X-Requested-With: XMLHttpRequest']);
}

sub post_multipart {
    my ($s, $uri, @kv) = @_;
    my $b = '----WebKitFormBoundary7MA4YWxkTrZu0gW';
    my $body = '';
    while (my ($k, $v) = splice @kv, 0, 2) {
        $body .= "--$b\r\nContent-Disposition: form-data; name=\"$k\"\r\n\r\n$v\r\n";
    }
    $body .= "--$b--\r\n";
    return $s->req(POST => $uri, body => $body,
                   type => "multipart/form-data; boundary=$b",
                   headers => ['X-Requested-With: XMLHttpRequest']);
}

package Test::Retarget::Recipe;

use JSON::PP ();

#--------------------------------------------------------------------------
# what the module holds and shows
#--------------------------------------------------------------------------

# "12.5" or 1250 with 2 decimals -> "12.50"
sub money_of {
    my ($v, $minor) = @_;
    $v /= 10 ** $minor if $minor;
    return sprintf '%.2f', $v;
}

sub unescape {
    my ($s) = @_;
    $s =~ s/&lt;/</g; $s =~ s/&gt;/>/g; $s =~ s/&quot;/"/g;
    $s =~ s/&#0*39;/'/g; $s =~ s/&amp;/&/g;
    return $s;
}

# the banner (built-in or a template's) at the end of the page, as
# Test::Retarget::Campaign finds it
sub banner_of {
    my ($body) = @_;
    return $1 if ($body // '') =~ m{(<div class="rt-banner".*</div>)(?=\s*</body>)}s;
    return undef;
}

# [qty, price, name] of a cart line of cart_lines(), the price as
# money_of() writes it (the module keeps it as the shop sent it)
sub money_at {
    my ($l) = @_;
    return [ $l->[0], money_of($l->[1]), $l->[2] ];
}

# the built-in banner's cart lines, by name: [ [name, qty, price, line
# total], ... ], as the banner writes them (money with cents, whatever
# the shop sent: 7, 34.0000)
sub banner_items {
    my ($banner) = @_;
    return [ sort { $a->[0] cmp $b->[0] }
             map { [ unescape($_->[0]), @$_[1 .. 3] ] }
             map { [ /<a[^>]*>([^<]*)<\/a><small>(\d+) &times; ([\d.]+)<\/small><\/div><b>([\d.]+)<\/b>/ ] }
             ($banner // '') =~ m{<li>(.*?)</li>}gs ];
}

sub banner_total {
    my ($banner) = @_;
    return ($banner // '') =~ m{<p class="rt-banner-tot">Total <b>([\d.]+)</b>}
        ? $1 : undef;
}

sub banner_cta {
    my ($banner) = @_;
    return ($banner // '') =~ m{<a class="rt-banner-cta" href="([^"]*)"}
        ? unescape($1) : undef;
}

# the module's cart lines of a visitor: { SKU => [qty, price, name, image,
# url, line] } from the meta's c:SKU fields
sub cart_lines {
    my ($vid) = @_;
    my $l = redis_cmd('HGETALL', "rt:{$vid}:meta");
    my %h = ref $l ? @$l : ();
    my %c;
    for my $f (grep { /^c:/ } keys %h) {
        my (undef, @v) = split /\t/, $h{$f}, -1;
        $c{ substr $f, 2 } = \@v;
    }
    return \%c;
}

1;
