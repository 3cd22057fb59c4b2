# Two nginx servers in front of one shop share one Redis and one secret:
# a visitor is the same visitor on both.  An item added to the cart
# through one shows in the reminder served by the other, and the
# reminder's frequency state is shared too.
#
# The first nginx is the harness's; the second is started here from the
# same configuration on another port, with its own prefix directory, and
# stopped by its pid.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis;
use File::Path qw(make_path remove_tree);
use Time::HiRes qw(sleep time);

use_redis();

my $SECRET = '0123456789abcdef0123456789abcdef';
my $V = vid('twoservers');
my $W = vid('otherone');

my $HTTP = qq{
    retarget_secret $SECRET;
    retarget_redis 127.0.0.1:\$TEST_NGINX_REDIS_PORT;
    retarget_redis_timeout 500ms;
    log_format rt '\$server_port \$retarget_visitor \$retarget_decision '
                  '\$uri';
};

my $SERVER = q{
    retarget on;
    retarget_delay 1h;
    retarget_frequency 2 1d pages=2;
    access_log logs/rt.log rt;
    location / { }
    location = /add {
        retarget_event cart_add sku=$arg_sku qty=$arg_qty price=$arg_price
                       name=$arg_name url=$arg_url;
        return 204;
    }
    location /retarget/ { retarget_control; }
};

# the second server: the harness's configuration on another port
sub start_second {
    my $dir = servroot() . '-second';
    remove_tree($dir);
    make_path("$dir/conf", "$dir/logs", "$dir/tmp");
    my $conf = read_file(servroot() . '/conf/nginx.conf');
    my ($port) = Test::Retarget::free_ports(1);
    my $first = server_port();
    my $root = servroot();
    $conf =~ s/listen 127\.0\.0\.1:$first\b/listen 127.0.0.1:$port/
        or die "no listen line in the configuration\n";
    $conf =~ s/\Q$root\E\/tmp/$dir\/tmp/g;
    open my $fh, '>', "$dir/conf/nginx.conf" or die "$dir: $!\n";
    print $fh $conf;
    close $fh;
    my @argv = map { $_ eq "$root/" ? "$dir/" : $_ }
               Test::Retarget::nginx_argv();
    my $pid = Test::Retarget::spawn(argv => \@argv,
                                    env => Test::Retarget::nginx_env(),
                                    out => "$dir/logs/stderr.log");
    my $up = eventually(sub { Test::Retarget::port_accepts($port) }, 10);
    return ($pid, $port, $dir, $up);
}

sub read_file {
    my ($f) = @_;
    open my $fh, '<', $f or return '';
    local $/;
    return scalar <$fh>;
}

sub get {
    my ($port, $uri, $vid) = @_;
    local $ENV{TEST_NGINX_SERVER_PORT} = $port;
    return http_req(uri => $uri, headers => [
        'Accept: text/html',
        'Cookie: rt_vid=' . signed_cookie($vid, $SECRET)
        . '; ' . consent_cookie('ack', $SECRET)]);
}

# the decision each server logged for the visitor's pages, in order
sub decisions {
    my ($dir, $vid) = @_;
    return [ map { (split ' ')[2] } grep { / \Q$vid\E \S+ \/index\.html$/ }
             split /\n/, read_file("$dir/logs/rt.log") ];
}

Test::Retarget::Redis::section('two servers, one visitor',
    { http_config => $HTTP, config => $SERVER },
    { 'index.html' => "<html><body><h1>Harbor</h1></body></html>\n" },
sub {
    my ($pid, $port, $dir, $up) = start_second();
    ok($up, 'the second nginx accepts connections') or return;
    my $first = server_port();
    ok(eventually(sub { scalar(nginx_clients()) >= 2 }, 10),
       'both servers are linked to Redis');
    sleep 0.2;

    # added through the first, on the second's reminder
    is(get($first, '/add?sku=MUG&qty=2&price=12.00&name=Harbor+Mug'
                   . '&url=/p/mug', $V)->{status}, 204, 'cart_add on A');
    is(get($first, '/add?sku=TEE&price=24.00&name=Tee&url=/p/tee', $W)
       ->{status}, 204, 'the other visitor adds on A too');
    ok(eventually(sub {
        defined redis_cmd('HGET', "rt:{$V}:meta", 'c:MUG') }, 5),
       'the line reached Redis');

    # the cart was left alone for two hours
    for my $vid ($V, $W) {
        redis_cmd('HSET', "rt:{$vid}:meta", 'cart_updated', int(time) - 7200);
    }

    my $r = get($port, '/', $V);
    is($r->{status}, 200, 'page on B');
    like($r->{body}, qr/Harbor Mug/, 'B reminds of the item added on A');
    unlike($r->{body}, qr/>Tee</, "not of the other visitor's item");

    # and the other way: added on B, shown on A, with both lines
    is(get($port, '/add?sku=CAP&price=9.00&name=Sailor+Cap&url=/p/cap', $V)
       ->{status}, 204, 'cart_add on B');
    ok(eventually(sub {
        defined redis_cmd('HGET', "rt:{$V}:meta", 'c:CAP') }, 5),
       'the second line reached Redis');
    redis_cmd('HSET', "rt:{$V}:meta", 'cart_updated', int(time) - 7200);

    $r = get($first, '/', $V);
    like($r->{body}, qr/Harbor Mug/, 'A shows the item added on A');
    like($r->{body}, qr/Sailor Cap/, 'and the one added on B');

    # the page cap of the visit counts the reminders of both servers
    sleep 0.3;
    $r = get($port, '/', $V);
    unlike($r->{body}, qr/Harbor Mug/,
           'a third page, on B: capped after two pages of the visit');
    sleep 0.3;

    is_deeply(decisions(servroot(), $V), ['shown'],
              'A logged one reminder');
    is_deeply(decisions($dir, $V), ['shown', 'capped'],
              'B logged the reminder, then the cap');

    ok(Test::Retarget::stop_child($pid, 'QUIT', 10),
       'the second nginx exited on QUIT');
    my $log = read_file("$dir/logs/error.log");
    unlike($log, qr/\[(alert|crit|emerg)\]/, "the second's error log is clean");
    remove_tree($dir);
});

done_testing();
