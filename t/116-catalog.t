# Issue 11, point 1: reminders show the catalogue's current products.
# rt:p:SKU (name, price, currency, image, url, in_stock) is what a cart
# line or a viewed product shows; a change reaches every reminder within
# 2 s, a product out of stock (in_stock 0, or in rt:out_of_stock) leaves
# reminders within 2 s, and a warm page costs Redis one read (the
# HGETALL of the visitor's meta).  Through real nginx and real
# redis-servers of this file: one that tracks keys (CLIENT TRACKING ...
# REDIRECT, ngx_http_retarget_track.c), one that cannot (CLIENT renamed
# away: the catalogue polls once a second), and a kill -9 and restart
# that must not leave a value of before the restart in any reminder;
# then util/retarget-feed into the reminders: a load shows the feed's
# name and price, a load of the same feed invalidates nothing, a product
# sold out in the feed leaves them, a new price shows, each within 2 s.
# Nothing sleeps longer than needed: every wait polls each 100 ms.
#
# TEST_RETARGET_PAGES=1000 for the commandstats of 1000 warm pages.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Campaign;
use Test::Retarget::Redis qw(signed_cookie);
use Time::HiRes qw(time sleep);

BEGIN { require './t/071-faults.t' }

my $PAGES = $ENV{TEST_RETARGET_PAGES} || 100;
# seconds: the promise (valgrind is slower than any promise)
my $LIMIT = $ENV{TEST_RETARGET_VALGRIND} ? 6 : 2;

my $H = 3600;

# the visitor with a cart (MUG, 2 of them) and one who only viewed TEE
my $CART = rvid('cat-cart');
my $BROWSE = rvid('cat-browse');

sub start_cat_nginx {
    my ($port) = @_;
    write_file('page.html', $Test::Retarget::Campaign::PAGE);
    return start_nginx({
        http_config => campaign_http(redis => "127.0.0.1:$port",
                                     timeout => '2s') . q{
            map $arg_sku $cat_name  { MUG "Harbor Mug"; CAP "Sea Cap"; }
            map $arg_sku $cat_price { MUG 12.00; CAP 8.00; }
            map $arg_sku $cat_cur   { CAP eur; }
            map $arg_sku $cat_stock { CAP 0; }
        },
        config => q{
            retarget on;
            retarget_frequency 100000 1d pages=100000;
            location / { }
            location = /st { retarget_status; }
            location = /e/product {
                retarget_event product sku=$arg_sku name=$cat_name
                               price=$cat_price catalog;
                return 200 "ok\n";
            }
            location = /e/product2 {
                retarget_event product sku=$arg_sku name=$cat_name
                               price=$cat_price currency=$cat_cur
                               in_stock=$cat_stock catalog;
                return 200 "ok\n";
            }
        },
    });
}

sub seed_visitors {
    my ($port) = @_;
    my $now = NOW;
    rcmd($port, 'HSET', meta_key($CART), 'cart_updated', $now - 2 * $H,
         'c:MUG', cart_line(ms => ($now - 2 * $H) * 1000, qty => 2,
                            price => '10.00', name => 'Old Mug'),
         'c:CUP', cart_line(ms => ($now - 2 * $H - 1) * 1000, qty => 1,
                            price => '3.00', name => 'Cup'));
    rcmd($port, 'HSET', meta_key($BROWSE),
         'v:TEE', view_line(ms => ($now - 4 * $H) * 1000, price => '5.00',
                            name => 'Old Tee'));
}

# name => [price, qty] of the reminder a visitor's page shows
sub reminder {
    my ($vid) = @_;
    my $r = page($vid);
    my $b = banner_of($r->{body}) // '';
    my @names = @{ banner_names($b) };
    return { decision => $r->{decision}, names => \@names,
             banner => $b, elapsed => $r->{elapsed} };
}

# polls the visitor's reminder each 100 ms until $ok->(reminder) holds,
# up to $limit seconds: the seconds it took, or undef
sub within {
    my ($vid, $ok, $limit) = @_;
    my $t0 = time;
    while (1) {
        my $rem = reminder($vid);
        return time - $t0 if $ok->($rem);
        return undef if time - $t0 > $limit;
        sleep 0.1;
    }
}

sub has_name {
    my ($name) = @_;
    return sub { grep { $_ eq $name } @{ $_[0]{names} } };
}

sub lacks_name {
    my ($name) = @_;
    return sub { !grep { $_ eq $name } @{ $_[0]{names} } };
}

sub calls {
    my ($port, $what) = @_;
    my $info = rcmd($port, 'INFO', 'commandstats') // '';
    return { map { /^cmdstat_(\w+):calls=(\d+),usec=(\d+)/
                   ? ($1 => ($what // '') eq 'usec' ? $3 : $2) : () }
             split /\r?\n/, $info };
}

sub delta {
    my ($before, $after) = @_;
    return { map { $_ => $after->{$_} - ($before->{$_} // 0) }
             grep { $after->{$_} - ($before->{$_} // 0) } keys %$after };
}

sub show {
    my ($d) = @_;
    return join ', ', map { "$_=$d->{$_}" } sort keys %$d;
}

sub error_log_text { Test::Retarget::read_from(servroot() . '/logs/error.log', 0) }

# the changes of the catalogue every mode must pass; $mode for the names
sub changes {
    my ($port, $mode) = @_;
    my $t;

    # the shop changes the name and price
    rcmd($port, 'HSET', 'rt:p:MUG', 'name', 'Harbor Mug II',
         'price', '13.50');
    $t = within($CART, has_name('Harbor Mug II'), $LIMIT);
    ok(defined $t, "$mode: a new name reaches the cart reminder within 2s")
        and diag(sprintf "$mode: new name shown after %.2fs", $t);
    like(reminder($CART)->{banner}, qr/13\.50/,
         "$mode: with the new price");

    rcmd($port, 'HSET', 'rt:p:TEE', 'name', 'Lighthouse Tee II');
    $t = within($BROWSE, has_name('Lighthouse Tee II'), $LIMIT);
    ok(defined $t, "$mode: and the browse reminder within 2s")
        and diag(sprintf "$mode: browse name shown after %.2fs", $t);

    # sold out in the hash, back
    rcmd($port, 'HSET', 'rt:p:MUG', 'in_stock', '0');
    $t = within($CART, lacks_name('Harbor Mug II'), $LIMIT);
    ok(defined $t, "$mode: in_stock 0 leaves the reminder within 2s")
        and diag(sprintf "$mode: in_stock 0 effective after %.2fs", $t);
    is_deeply(reminder($CART)->{names}, ['Cup'],
              "$mode: the other line stays");

    rcmd($port, 'HSET', 'rt:p:MUG', 'in_stock', '1');
    $t = within($CART, has_name('Harbor Mug II'), $LIMIT);
    ok(defined $t, "$mode: back in stock within 2s");

    # sold out in the set, back
    rcmd($port, 'SADD', 'rt:out_of_stock', 'MUG');
    $t = within($CART, lacks_name('Harbor Mug II'), $LIMIT);
    ok(defined $t, "$mode: rt:out_of_stock leaves the reminder within 2s")
        and diag(sprintf "$mode: out_of_stock effective after %.2fs", $t);

    rcmd($port, 'SREM', 'rt:out_of_stock', 'MUG');
    $t = within($CART, has_name('Harbor Mug II'), $LIMIT);
    ok(defined $t, "$mode: out of the set, back within 2s");

    # the browse reminder's product sold out
    rcmd($port, 'HSET', 'rt:p:TEE', 'in_stock', '0');
    $t = within($BROWSE, sub { $_[0]{decision} ne 'shown' }, $LIMIT);
    ok(defined $t, "$mode: a sold-out viewed product leaves the browse "
                   . "reminder within 2s");
    rcmd($port, 'HDEL', 'rt:p:TEE', 'in_stock');
    ok(defined within($BROWSE, has_name('Lighthouse Tee II'), $LIMIT),
       "$mode: and comes back");
}

# warm pages: what Redis spends on them
sub warm {
    my ($port, $mode) = @_;
    reminder($CART) for 1 .. 3;
    reminder($BROWSE) for 1 .. 3;
    my $c0 = calls($port);
    my $u0 = calls($port, 'usec');
    my $t0 = time;
    reminder($_ % 2 ? $CART : $BROWSE) for 1 .. $PAGES;
    my $secs = time - $t0;
    my $d = delta($c0, calls($port));
    my $u = delta($u0, calls($port, 'usec'));
    delete $d->{info};
    delete $u->{info};
    my $usec = 0;
    $usec += $_ for values %$u;
    diag(sprintf "$mode: %d warm pages in %.1fs, Redis: %s; Redis usec: "
                 . "%d in all (%s)", $PAGES, $secs, show($d), $usec, show($u));
    return ($d, $secs);
}

#==========================================================================
# 1. A Redis that tracks keys
#==========================================================================
{
    my ($port) = Test::Retarget::free_ports(1);
    my $redis = start_redis($port);
    seed_visitors($port);
    rcmd($port, 'HSET', 'rt:p:MUG', 'name', 'Harbor Mug', 'price', '12.00',
         'currency', 'EUR', 'image', '/img/mug.png', 'url', '/p/mug');
    rcmd($port, 'HSET', 'rt:p:TEE', 'name', 'Lighthouse Tee',
         'price', '24.00');

    ok(start_cat_nginx($port), 'tracked: nginx starts');
    ok(wait_link('up', 5), 'tracked: the link is up');
    ok(wait_until(sub { error_log_text() =~ /tells of catalogue changes/ },
                  5), 'tracked: Redis tracks the catalogue for the worker');

    my $rem = reminder($CART);
    is($rem->{decision}, 'shown', 'tracked: a cart reminder');
    is_deeply($rem->{names}, ['Harbor Mug', 'Cup'],
              "tracked: the catalogue's name, not the line's copy");
    like($rem->{banner}, qr/12\.00/, "tracked: the catalogue's price");
    like($rem->{banner}, qr{/p/mug}, "tracked: the catalogue's url");
    like($rem->{banner}, qr/\b2\b/, "tracked: the visitor's quantity");
    is_deeply(reminder($BROWSE)->{names}, ['Lighthouse Tee'],
              'tracked: the browse reminder too');

    my ($d) = warm($port, 'tracked');
    is($d->{hgetall} // 0, $PAGES, 'tracked: one HGETALL per warm page');
    # the rest are the writes of the reminders shown (impressions), not
    # waited for, and the worker's once-a-second counter flushes and
    # retention trims
    is(join(',', grep { !/^(?:hgetall|hset|expire|hincrby|xtrim
                                |zremrangebyscore)$/x } sort keys %$d),
       '', 'tracked: no other read, no catalogue or stock question');

    changes($port, 'tracked');

    # a product page that writes what the worker knows writes nothing
    reminder($CART);
    rcmd($port, 'HSET', 'rt:p:MUG', 'name', 'Harbor Mug', 'price', '12.00');
    ok(defined within($CART, has_name('Harbor Mug'), $LIMIT),
       'tracked: the name is back');
    # the shop's hash has no TTL: a catalog write would give it one
    is(rcmd($port, 'TTL', 'rt:p:MUG'), -1, 'tracked: the shop wrote MUG');
    my $r = http_req(uri => '/e/product?sku=MUG',
                     headers => { Cookie => 'rt_vid='
                                  . signed_cookie($CART, $SECRET) });
    is($r->{status}, 200, 'tracked: product page');
    ok(wait_until(sub { rcmd($port, 'HEXISTS', meta_key($CART), 'v:MUG') },
                  2), 'tracked: its view is written');
    is(rcmd($port, 'TTL', 'rt:p:MUG'), -1,
       'tracked: a product page with the known values does not write '
       . 'rt:p:MUG');

    rcmd($port, 'HSET', 'rt:p:MUG', 'price', '11.00');
    ok(defined within($CART, sub { $_[0]{banner} =~ /11\.00/ }, $LIMIT),
       'tracked: the shop changed the price');
    http_req(uri => '/e/product?sku=MUG',
             headers => { Cookie => 'rt_vid=' . signed_cookie($CART, $SECRET) });
    ok(wait_until(sub { (rcmd($port, 'HGET', 'rt:p:MUG', 'price') // '')
                        eq '12.00' }, 2),
       'tracked: a product page with other values writes them');

    # a catalog event writes currency and in_stock when it has them
    http_req(uri => '/e/product2?sku=CAP',
             headers => { Cookie => 'rt_vid=' . signed_cookie($CART, $SECRET) });
    ok(wait_until(sub { (rcmd($port, 'HGET', 'rt:p:CAP', 'in_stock') // '')
                        eq '0' }, 2), 'tracked: in_stock= written');
    is(rcmd($port, 'HGET', 'rt:p:CAP', 'currency'), 'EUR',
       'tracked: currency= written, upper case');

    # either connection dropped alone: tracked again, changes still shown
    my $pubsub_ids = sub {
        join ',', (rcmd($port, 'CLIENT', 'LIST', 'TYPE', 'pubsub') // '')
                  =~ /\bid=(\d+)/g;
    };
    for my $type ('pubsub', 'normal') {
        my $before = $pubsub_ids->();
        my $n = rcmd($port, 'CLIENT', 'KILL', 'TYPE', $type);
        ok(($n // 0) >= 1, "$type link killed ($n)");
        if ($type eq 'pubsub') {
            ok(wait_until(sub { my $now = $pubsub_ids->();
                                $now ne '' && $now ne $before }, 3),
               'the invalidation link is opened again');
        } else {
            ok(wait_link('up', 3), 'the main link is up again');
        }
        # the status is published once a second
        sleep 1.1;
        ok(wait_until(sub { worker_status()->{catalog_tracked} }, 3),
           "after the $type link's loss: tracked again")
            or diag(explain(worker_status()));
        rcmd($port, 'HSET', 'rt:p:MUG', 'name', "Mug after $type");
        my $t = within($CART, has_name("Mug after $type"), $LIMIT);
        ok(defined $t, "after the $type link's loss: a change shown within "
                       . "2s") and diag(sprintf "%s: %.2fs", $type, $t);
    }
    ok(worker_status()->{catalog_invalidations} >= 1,
       'the status counts invalidations');

    # killed and restarted with other values: none of before shows
    kill_mine($redis, 'KILL');
    ok(wait_link('down', 3), 'restart: the link is down');
    $redis = start_redis($port);
    seed_visitors($port);
    rcmd($port, 'HSET', 'rt:p:MUG', 'name', 'Restarted Mug',
         'price', '15.00');
    ok(wait_link('up', 12), 'restart: the link is up again');
    $rem = reminder($CART);
    is_deeply($rem->{names}, ['Restarted Mug', 'Cup'],
              'restart: the first page after it shows the new value');
    rcmd($port, 'HSET', 'rt:p:MUG', 'name', 'Restarted Mug II');
    ok(defined within($CART, has_name('Restarted Mug II'), $LIMIT),
       'restart: changes reach reminders again within 2s');

    my $log = error_log_text();
    unlike($log, qr/\[(?:alert|crit|emerg)\]/, 'tracked: no alert');
    is(stop_nginx(), 1, 'tracked: nginx exits on QUIT');
    kill_mine($redis, 'KILL');
}

#==========================================================================
# 2. A Redis that cannot track (CLIENT renamed away): polled
#==========================================================================
{
    my ($port) = Test::Retarget::free_ports(1);
    my $redis = start_redis($port, '--rename-command', 'CLIENT', '');
    seed_visitors($port);
    rcmd($port, 'HSET', 'rt:p:MUG', 'name', 'Harbor Mug', 'price', '12.00');
    rcmd($port, 'HSET', 'rt:p:TEE', 'name', 'Lighthouse Tee');

    ok(start_cat_nginx($port), 'polled: nginx starts');
    ok(wait_link('up', 5), 'polled: the link is up');
    is_deeply(reminder($CART)->{names}, ['Harbor Mug', 'Cup'],
              "polled: the catalogue's name");

    my ($d, $secs) = warm($port, 'polled');
    is($d->{hgetall} // 0, $PAGES, 'polled: one HGETALL per warm page');
    # the refresh: 3 products once a second, not one read per page
    ok(($d->{hmget} // 0) <= 3 * (int($secs) + 2),
       'polled: HMGETs once a second, not per page')
        or diag(show($d));

    changes($port, 'polled');

    my $log = error_log_text();
    is(scalar(() = $log =~ /does not track keys/g), 1,
       'polled: logged once')
        or diag(log_lines($log, qr/track/));
    unlike($log, qr/\[(?:alert|crit|emerg)\]/, 'polled: no alert');
    is(stop_nginx(), 1, 'polled: nginx exits on QUIT');
    kill_mine($redis, 'KILL');
}

#==========================================================================
# 3. A hostile server on the invalidation link: the worker survives
#==========================================================================
{
    require Test::Retarget::FakeRedis;
    my ($port) = Test::Retarget::free_ports(1);
    my $fake = Test::Retarget::FakeRedis->start(port => $port,
                                                mode => 'track_hostile');
    ok(start_cat_nginx($port), 'hostile: nginx starts');
    ok(wait_link('up', 5), 'hostile: the main link is up');
    my $pid = worker_status()->{pid};
    my $bad = 0;
    my $t0 = time;
    while (time - $t0 < 1.5) {
        my $r = page($CART);
        $bad++ unless ($r->{status} // 0) == 200
                      && $r->{body} =~ $Test::Retarget::Campaign::WHOLE_PAGE;
        sleep 0.05;
    }
    is($bad, 0, 'hostile: every page whole meanwhile');
    is(worker_status()->{pid}, $pid, 'hostile: the same worker');
    my $n = $fake->connections;
    cmp_ok($n, '>=', 3, 'hostile: the invalidation link was tried again')
        or diag("connections: $n");
    cmp_ok($n, '<=', 12, 'hostile: with backoff, not in a loop')
        or diag("connections: $n");
    my $log = error_log_text();
    unlike($log, qr/\[(?:alert|crit|emerg)\]|exited on signal/,
           'hostile: no crash');
    is(stop_nginx(), 1, 'hostile: nginx exits on QUIT');
    $fake->stop;
}

#==========================================================================
# 4. The feed (util/retarget-feed) into the reminders, end to end
#==========================================================================
{
    my ($port) = Test::Retarget::free_ports(1);
    my $redis = start_redis($port);
    seed_visitors($port);

    ok(start_cat_nginx($port), 'feed: nginx starts');
    ok(wait_link('up', 5), 'feed: the link is up');
    ok(wait_until(sub { error_log_text() =~ /tells of catalogue changes/ },
                  5), 'feed: Redis tracks the catalogue for the worker');
    is_deeply(reminder($CART)->{names}, ['Old Mug', 'Cup'],
              "feed: before any load, the line's own copy");

    my $file = servroot() . '/feed.tsv';
    # loads rows "SKU title price availability": the summary line
    my $load = sub {
        my (@opt) = @_;
        my @rows = ref $opt[-1] ? @{ pop @opt } : ();
        open my $fh, '>', $file or die "$file: $!";
        print {$fh} "id\ttitle\tprice\tavailability\n";
        print {$fh} join("\t", @$_), "\n" for @rows;
        close $fh;
        my $out = `util/retarget-feed --redis 127.0.0.1:$port @opt $file 2>&1`;
        is($? >> 8, 0, "feed: util/retarget-feed @opt exits 0")
            or diag($out);
        return $out;
    };
    my @feed = (['MUG', 'Feed Mug', '11.00 USD', 'in_stock'],
                ['TEE', 'Feed Tee', '20.00 USD', 'in_stock']);
    my $t;

    like($load->(\@feed), qr/loaded 2 .*changed 2/, 'feed: loaded');
    $t = within($CART, has_name('Feed Mug'), $LIMIT);
    ok(defined $t, "feed: the feed's name reaches the cart reminder within "
                   . '2s') and diag(sprintf 'feed: name shown after %.2fs', $t);
    my $rem = reminder($CART);
    is_deeply($rem->{names}, ['Feed Mug', 'Cup'], 'feed: the other line kept');
    like($rem->{banner}, qr/11\.00/, "feed: with the feed's price");
    like($rem->{banner}, qr/\b2\b/, "feed: and the visitor's quantity");
    $t = within($BROWSE, has_name('Feed Tee'), $LIMIT);
    ok(defined $t, 'feed: and the browse reminder within 2s');
    like(reminder($BROWSE)->{banner}, qr/20\.00/, 'feed: its price');

    # --force writes equal values: every worker told, products read again
    my $c0 = calls($port);
    like($load->('--force', \@feed), qr/unchanged 0, changed 2/,
         'feed: --force writes both');
    $t = within($CART, sub { (delta($c0, calls($port))->{hmget} // 0) > 0 },
                $LIMIT);
    ok(defined $t, 'feed: after --force the worker reads the product '
                   . 'again (invalidated)');

    # the same feed again: nothing written, nothing invalidated, the
    # worker's catalogue stays warm (no HMGET on the pages after it)
    reminder($CART) for 1 .. 2;
    reminder($BROWSE) for 1 .. 2;
    $c0 = calls($port);
    like($load->(\@feed), qr/loaded 2 .*unchanged 2, changed 0/,
         'feed: the same feed again: unchanged');
    my $c1 = calls($port);
    my $d = delta($c0, $c1);
    is($d->{hmget} // 0, 2, "feed: the load's own reads (HMGET of its 2 "
                            . 'products)') or diag(show($d));
    # (HSET and EXPIRE: the worker's too, a visit's meta)
    ok(!$d->{sadd} && !$d->{srem} && !$d->{persist},
       'feed: no SADD, SREM or PERSIST') or diag(show($d));
    # an invalidation would make the next page read the product again
    for (1 .. 5) {
        reminder($CART);
        reminder($BROWSE);
        sleep 0.1;
    }
    $d = delta($c1, calls($port));
    is($d->{hmget} // 0, 0, 'feed: an unchanged load invalidates nothing: '
                            . 'no HMGET on the pages after it')
        or diag(show($d));

    # sold out in the feed: out of both reminders within 2s
    $feed[0][3] = 'out_of_stock';
    $feed[1][3] = 'out_of_stock';
    like($load->(\@feed), qr/\(2 out of stock\), unchanged 0, changed 2/,
         'feed: both sold out');
    $t = within($CART, lacks_name('Feed Mug'), $LIMIT);
    ok(defined $t, 'feed: a product sold out in the feed leaves the cart '
                   . 'reminder within 2s')
        and diag(sprintf 'feed: out of stock effective after %.2fs', $t);
    is_deeply(reminder($CART)->{names}, ['Cup'], 'feed: the other line stays');
    $t = within($BROWSE, sub { $_[0]{decision} ne 'shown' }, $LIMIT);
    ok(defined $t, 'feed: the sold-out viewed product: no browse reminder '
                   . 'within 2s');

    # back in stock at a new price: the new price shows
    @feed = (['MUG', 'Feed Mug', '9.50 USD', 'in_stock'],
             ['TEE', 'Feed Tee', '18.00 USD', 'in_stock']);
    like($load->(\@feed), qr/unchanged 0, changed 2/,
         'feed: back in stock, new prices');
    $t = within($CART, sub { $_[0]{banner} =~ /9\.50/
                             && has_name('Feed Mug')->($_[0]) }, $LIMIT);
    ok(defined $t, "feed: the feed's new price in the cart reminder within "
                   . '2s') and diag(sprintf 'feed: price shown after %.2fs', $t);
    unlike(reminder($CART)->{banner}, qr/11\.00/, 'feed: not the old one');
    $t = within($BROWSE, sub { $_[0]{banner} =~ /18\.00/ }, $LIMIT);
    ok(defined $t, 'feed: and in the browse reminder within 2s');

    my $log = error_log_text();
    unlike($log, qr/\[(?:alert|crit|emerg)\]/, 'feed: no alert');
    is(stop_nginx(), 1, 'feed: nginx exits on QUIT');
    kill_mine($redis, 'KILL');
}

done_testing();
