package Test::Retarget::ShopRecipe;

# Helpers of the platform recipe tests (t/112-t/114): the recipe of
# conf-examples/<platform>.conf run as it is (the part below its "8<"
# line, with only the addresses, the secret and the listen port
# replaced), a fake shop from t/fake/<platform>.py, a visitor with a
# cookie jar that talks to the shop through nginx, and the reminder banner
# read back as the list of lines it shows.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use Test::More;
use Test::Retarget qw(http_req servroot server_port redis_cmd);
use Test::Retarget::Redis qw(signed_cookie signed_consent hash today
                             eventually);

use Exporter qw(import);

our @EXPORT = qw($SECRET recipe_http whole_conf_ok start_shop stop_shop shop_get
                 new_visitor visit banner_lines banner_total banner_cta
                 cart_lines view_line_of meta_of move_cart_back
                 wait_cart stats_today html_unescape same_amount amount
                 banner_matches);

our $SECRET = '0123456789abcdef0123456789abcdef';
our $HOST   = 'shop.example.com';

my $REPO = abs_path(dirname(abs_path(__FILE__)) . '/../../../..');
my $Shop;                       # { pid, port }

# The http{} text for start_nginx(): the recipe's part below its "8<"
# line up to the http block's closing brace, with the upstream servers,
# Redis, the secret and the listen port of the test, and a decision log
# (Test::Retarget::Campaign's format) beside it.
sub recipe_http {
    my ($platform, $shop_port) = @_;
    my $file = "$REPO/conf-examples/$platform.conf";
    open my $fh, '<', $file or die "$file: $!\n";
    my $text = do { local $/; <$fh> };
    my ($part) = $text =~ /^[ \t]*# -+ 8< recipe[^\n]*\n(.*)\}\s*\z/ms
        or die "$file: no \"8<\" line or no closing brace\n";
    my $n = 0;
    $n += $part =~ s/^(\s*server\s+)127\.0\.0\.1:\d+/${1}127.0.0.1:$shop_port/mg;
    $n += $part =~ s/^(\s*retarget_redis\s+)\S+;/${1}127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT};/m;
    $n += $part =~ s/^(\s*retarget_secret\s+)[^;]+;/$1$SECRET;/m;
    $n += $part =~ s/^(\s*listen\s+)80;/${1}127.0.0.1:${\ server_port()};/m;
    die "$file: expected upstream, redis, secret and listen lines\n"
        if $n < 4;
    return $part . q{
    log_format rt_campaign '$retarget_decision|$retarget_variant|'
                          '$retarget_cart_count|$retarget_cart_total|'
                          '$retarget_visitor|$status|$request_uri';
    access_log logs/campaign.log rt_campaign;
};
}

# The whole file, as an operator installs it, passes `nginx -t`: only the
# module's path, the pid and log files (into the servroot) and, without
# root, the user line are changed.
sub whole_conf_ok {
    my ($platform) = @_;
    my $file = "$REPO/conf-examples/$platform.conf";
    open my $fh, '<', $file or die "$file: $!\n";
    my $text = do { local $/; <$fh> };
    my $root = servroot();
    my ($so) = Test::Retarget::module_paths();
    $text =~ s{^load_module \S+;}{load_module $so;}m;
    $text =~ s{^pid \S+;}{pid $root/logs/whole-$platform.pid;}m;
    $text =~ s{/var/log/nginx/}{$root/logs/}g;
    $text =~ s{^user \S+;}{# user}m if $> != 0;
    $text =~ s{include\s+/etc/nginx/mime.types;}{types { text/html html; }}
        unless -r '/etc/nginx/mime.types';
    my $conf = "$root/conf/whole-$platform.conf";
    open my $out, '>', $conf or die "$conf: $!\n";
    print {$out} $text;
    close $out;
    my $log = "$root/logs/whole-$platform.out";
    my $env = Test::Retarget::nginx_env();      # ASan's runtime
    local @ENV{ keys %$env } = values %$env;
    my $status = system(sprintf '%s -t -p %s/ -c %s -e %s/logs/whole-error.log'
                        . ' >%s 2>&1', Test::Retarget::nginx_binary(),
                        $root, $conf, $root, $log);
    my $got = do { open my $l, '<', $log; local $/; <$l> // '' };
    ok($status == 0, "the whole conf-examples/$platform.conf passes nginx -t")
        or diag($got);
}

#--------------------------------------------------------------------------
# the fake shop
#--------------------------------------------------------------------------

sub start_shop {
    my ($platform) = @_;
    stop_shop();
    Test::Retarget::ensure_servroot();
    my $port = $ENV{TEST_NGINX_BACKEND_PORT};
    my $pid = fork;
    die "fork: $!\n" unless defined $pid;
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', servroot() . "/logs/fake-$platform.log";
        open STDERR, '>&', \*STDOUT;
        { exec "python3", "$REPO/t/fake/$platform.py", $port; }
        POSIX::_exit(127);
    }
    $Shop = { pid => $pid, port => $port };
    my $up = eventually(sub {
        IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                              Proto => 'tcp') ? 1 : 0 }, 10);
    die "t/fake/$platform.py did not listen on $port\n" unless $up;
    return $port;
}

sub stop_shop {
    return unless $Shop;
    kill 'TERM', $Shop->{pid};
    waitpid $Shop->{pid}, 0;
    undef $Shop;
}

END { stop_shop() }

# GET straight from the fake shop (not through nginx): its own cart.
sub shop_get {
    my ($v, $uri) = @_;
    my $r = http_req(port => $Shop->{port}, uri => $uri,
                     headers => [ 'Host: ' . $HOST, cookie_header($v) ]);
    return $r;
}

#--------------------------------------------------------------------------
# the visitor
#--------------------------------------------------------------------------

# A returning visitor (a signed rt_vid for the id, the notice already
# acknowledged) with an empty jar for the shop's cookies.
sub new_visitor {
    my ($vid) = @_;
    return { vid => $vid,
             jar => { rt_vid => signed_cookie($vid, $SECRET),
                      rt_vid_consent => signed_consent('ack', $SECRET) } };
}

sub cookie_header {
    my ($v) = @_;
    return 'Cookie: ' . join '; ', map { "$_=$v->{jar}{$_}" }
                                   sort keys %{ $v->{jar} };
}

# One request through nginx.  %o: method, uri, body, type (Content-Type,
# default JSON for a body), page (a navigation: Accept text/html).
sub visit {
    my ($v, $method, $uri, %o) = @_;
    my @h = ('Host: ' . $HOST, cookie_header($v));
    push @h, 'Accept: ' . ($o{page} ? 'text/html,application/xhtml+xml'
                                    : 'application/json, */*');
    push @h, 'Content-Type: ' . ($o{type} // 'application/json')
        if defined $o{body};
    my $r = http_req(method => $method, uri => $uri, headers => \@h,
                     (defined $o{body} ? (body => $o{body}) : ()));
    for my $c (@{ $r->{headers}{'set-cookie'} || [] }) {
        my ($k, $val) = $c =~ /^\s*([^=;\s]+)=([^;]*)/ or next;
        $v->{jar}{$k} = $val;
    }
    return $r;
}

#--------------------------------------------------------------------------
# what the module holds
#--------------------------------------------------------------------------

sub meta_of { hash("rt:{$_[0]}:meta") }

# The visitor's cart lines: { SKU => { qty, price, name, image, url } }
sub cart_lines {
    my ($vid) = @_;
    my $m = meta_of($vid);
    my %c;
    for my $f (grep { /^c:/ } keys %$m) {
        my (undef, $qty, $price, $name, $image, $url, $line)
            = split /\t/, $m->{$f}, -1;
        $c{ substr $f, 2 } = { qty => $qty, price => $price, name => $name,
                               image => $image, url => $url,
                               line => $line };
    }
    return \%c;
}

# v:SKU as { price, name, image, url }, undef when absent
sub view_line_of {
    my ($vid, $sku) = @_;
    my $v = meta_of($vid)->{"v:$sku"};
    return undef unless defined $v;
    my (undef, $price, $name, $image, $url) = split /\t/, $v, -1;
    return { price => $price, name => $name, image => $image, url => $url };
}

# Waits until the module's cart has the wanted skus (the writes follow the
# response), then returns it.
sub wait_cart {
    my ($vid, @skus) = @_;
    my $want = join ' ', sort @skus;
    my $c;
    eventually(sub { $c = cart_lines($vid);
                     join(' ', sort keys %$c) eq $want }, 5);
    return $c;
}

# As if the cart had been left two hours ago: t/080's way of moving the
# clock, through the stored timestamps.
sub move_cart_back {
    my ($vid) = @_;
    redis_cmd('HSET', "rt:{$vid}:meta", 'cart_updated', int(time) - 7200);
}

sub stats_today { hash('rt:stats:' . today()) }

#--------------------------------------------------------------------------
# the banner
#--------------------------------------------------------------------------

sub html_unescape {
    my ($s) = @_;
    $s =~ s/&#x([0-9a-f]+);/chr hex $1/gie;
    $s =~ s/&#(\d+);/chr $1/ge;
    my %e = (quot => '"', amp => '&', lt => '<', gt => '>', apos => "'");
    $s =~ s/&(quot|amp|lt|gt|apos);/$e{$1}/g;
    return $s;
}

# The built-in banner's cart lines: [ { name, qty, price, line_total } ]
sub banner_lines {
    my ($body) = @_;
    my @l;
    while (($body // '') =~ m{<li>.*?<a[^>]*>([^<]*)</a><small>(\d+) &times; ([^<]*)</small></div><b>([^<]*)</b></li>}g) {
        push @l, { name => html_unescape($1), qty => $2, price => $3,
                   line_total => $4 };
    }
    return \@l;
}

sub banner_total {
    my ($body) = @_;
    return ($body // '') =~ m{<p class="rt-banner-tot">Total <b>([^<]*)</b>}
        ? $1 : undef;
}

# the banner's main link (through the click endpoint)
sub banner_cta {
    my ($body) = @_;
    return ($body // '') =~ m{<a class="rt-banner-cta" href="([^"]*)"}
        ? html_unescape($1) : undef;
}

# An amount as "12.50" (what the shop sent may be "12.5" or 15); undef
# or anything else stays as it is, so that a comparison shows it.
sub amount {
    my ($v) = @_;
    return $v unless defined $v && $v =~ /^\d+(?:\.\d+)?\z/;
    return sprintf '%.2f', $v;
}

# The banner lists exactly the shop's cart: $shop { sku => { name, qty,
# price } } and its total; each line's total too.  Unit prices are shown
# with two decimals whatever the shop sent ("11.9", "15.0000").
sub banner_matches {
    my ($body, $shop, $total) = @_;
    my $lines = banner_lines($body);
    my $ok = is_deeply(
        [ sort map { "$_->{name}|$_->{qty}|$_->{price}" } @$lines ],
        [ sort map { "$_->{name}|$_->{qty}|" . sprintf('%.2f', $_->{price}) }
              values %$shop ],
        "the reminder lists the shop's cart");
    is_deeply([ sort map { $_->{line_total} } @$lines ],
              [ sort map { sprintf '%.2f', $_->{qty} * $_->{price} }
                    values %$shop ], "the reminder's line totals");
    is(banner_total($body), $total, "the reminder's total: $total");
    diag($body) unless $ok;
}

# Two amounts are the same to the cent ("43.7", "43.70", 43.7).
sub same_amount {
    my ($got, $want, $name) = @_;
    ok(defined $got && $got =~ /^-?\d+(?:\.\d+)?$/
       && sprintf('%.2f', $got) eq sprintf('%.2f', $want), $name)
        or diag('got ' . ($got // 'undef') . ", want $want");
}

1;
