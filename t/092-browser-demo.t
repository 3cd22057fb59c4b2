# The story of `make run` in a real browser: util/run-demo.sh starts its
# redis-server, the shop application (demo/shop.py) and nginx with the
# module in front of it (conf-examples/demo.conf, the campaign delay
# shortened with DEMO_DELAY); Debian's Chromium, driven by playwright-core
# from t/browser/demo.js, is one visitor: the notice, product pages (the
# shop's JSON-LD), two adds with the shop's own buttons, leave, come back
# after the delay to a reminder that lists exactly the shop's cart (names,
# quantities, prices, total), one more of a line and a line removed on the
# shop's cart page, the reminder follows, checkout, the order, and no
# reminder of the cart after it.  Then what Redis holds (product data from
# the page, the order's value) and run-demo.sh stopping its three children.
#
# Screenshots (desktop 1280x800, phone 390x844) go to t/browser/screenshots/.
# Needs chromium, node and npm: when one is missing this test FAILS, it does
# not skip (see Test::Retarget::Browser).
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Browser;
use Digest::SHA qw(sha256_hex);
use File::Path qw(make_path remove_tree);
use POSIX qw(WNOHANG strftime);
use Time::HiRes qw(time sleep);

my $RUN_LIMIT = 180;          # seconds for the whole browser script
my $DELAY     = 5;            # seconds: the campaign delay of this run
my $SHOTS     = "$BROWSER_DIR/screenshots";

if ($ENV{TEST_RETARGET_ASAN} || $ENV{TEST_RETARGET_VALGRIND}) {
    plan(skip_all => 'run-demo.sh starts the packaged nginx with build/ as `make run` does');
}

write_file('placeholder.html', "servroot\n");   # sets up servroot
my $out    = servroot();
my $rundir = "$out/demo-run";

if (!browser_prerequisites()) {
    done_testing();
    exit;
}

#==========================================================================
# make run, on the test's ports
#==========================================================================

my $port = server_port();
my ($redis_port, $shop_port) = @ENV{qw(TEST_NGINX_RAND_PORT_1 TEST_NGINX_RAND_PORT_2)};
my ($module) = Test::Retarget::module_paths();
my $demo_out = "$out/run-demo.out";

my $demo = fork // die "fork: $!\n";
if (!$demo) {
    open STDIN, '<', '/dev/null';
    open STDOUT, '>', $demo_out or die "$demo_out: $!\n";
    open STDERR, '>&', \*STDOUT;
    $SIG{$_} = 'DEFAULT' for qw(INT TERM PIPE);
    @ENV{qw(PORT REDIS_PORT SHOP_PORT RUNDIR DEMO_DELAY MODULE)}
        = ($port, $redis_port, $shop_port, $rundir, "${DELAY}s", $module);
    exec 'bash', "$BROWSER_DIR/../../util/run-demo.sh";
    die "exec: $!\n";
}

my $ready = 0;
for (1 .. 300) {
    last if waitpid($demo, WNOHANG) == $demo;
    if (slurp($demo_out) =~ /Press Ctrl-C to stop/) { $ready = 1; last }
    sleep 0.1;
}
ok($ready, 'run-demo.sh is up (redis-server, the shop, nginx)')
    or diag(slurp($demo_out));
my %pid = (slurp($demo_out) =~ /^\s+(nginx|shop|redis-server):\s+pid (\d+)/mg);
is(scalar keys %pid, 3, 'run-demo.sh names the pids of nginx, the shop and redis-server')
    or diag(slurp($demo_out));
unlike(slurp($demo_out), qr/WARNING/, 'its smoke test of / passed');
if (!$ready) {
    stop_demo();
    done_testing();
    exit;
}

#==========================================================================
# Two visitors never share the shop's session: nginx keeps the upstream
# connection alive between them (a session cookie once re-sent on the
# next answer of the same connection gave the next visitor the cart)
#==========================================================================

{
    my $b = "http://127.0.0.1:$port";
    my $add = sub {
        my $cmd = "curl -s -D - -o /dev/null -X POST"
                . " -H 'Content-Type: application/json'"
                . qq{ -d '{"sku":"mug","qty":1}' $b/api/cart/items};
        my $h = `$cmd`;
        return $h =~ /shop_session=([\w-]+)/ ? $1 : undef;
    };
    my $first = $add->();
    my $home = `curl -s -D - -o /dev/null -H 'Accept: text/html' $b/`;
    my $second = $add->();
    ok(defined $first && defined $second && $first ne $second,
       'two visitors get two shop sessions');
    my $taken = $first // 'none';
    unlike($home, qr/shop_session=\Q$taken\E/,
           'a page for another visitor carries no one else\'s session');
}

#==========================================================================
# The browser run
#==========================================================================

remove_tree($SHOTS);
make_path($SHOTS);
my $base = "http://127.0.0.1:$port";
my $run = run_browser_script('demo.js',
    ['--base', $base, '--out', $out, '--delay', $DELAY, '--shots', $SHOTS],
    limit => $RUN_LIMIT);
my $r = browser_result($run);
if (!$r) {
    stop_demo();
    done_testing();
    exit;
}
my $S = scenarios_ran($r, 'story');
my $s = $S->{story} || {};

# 1. Home and the notice
{
    my $h = $s->{home} || {};
    is($h->{status}, 200, 'home: 200 through nginx');
    is($h->{cards}, 4, 'home: the four products');
    is($h->{notice}, 1, 'home: a new visitor sees the notice');
    is_deeply(nav_summary($h->{navigations}),
              ['POST /retarget/ack?to=/ 303 ' . "$base/", 'GET / 200'],
              'home: OK posts ack, back on /');
    is($h->{notice_after}, 0, 'home: no notice after OK');
}

# 2. Product pages and the adds
my %LD = (mug => ['Harbor Mug', '12.00'], tshirt => ['Lighthouse T-shirt', '24.00']);
for my $sku (sort keys %LD) {
    my $p = $s->{$sku} || {};
    my $ld = ref $p->{ld} eq 'HASH' ? $p->{ld} : {};
    is($p->{status}, 200, "product $sku: 200");
    is_deeply([ @$ld{qw(@type sku name)}, $ld->{offers}{price},
                $ld->{offers}{priceCurrency}, $ld->{offers}{availability},
                $ld->{image}, $ld->{url} ],
              ['Product', $sku, @{ $LD{$sku} }, 'EUR', 'https://schema.org/InStock',
               "$base/img/$sku.svg", "$base/product/$sku"],
              "product $sku: its JSON-LD Product (sku, name, price, currency, stock, image, url)");
}
my %added;
for my $step ([mug => 'Harbor Mug', 2, 2], [category => 'Tide Notebook', 1, 3]) {
    my ($k, $name, $qty, $count) = @$step;
    my $a = $s->{$k} || {};
    my $item = ($a->{reply} || {})->{item} || {};
    is($a->{status}, 200, "add $name: the API answers 200");
    like($item->{id} // '', qr/^ln_[0-9a-f]{8}\z/, "add $name: the reply names the shop's line id");
    is($item->{quantity}, $qty, "add $name: quantity $qty");
    like($a->{said} // '', qr/^Added \Q$qty\E \x{d7} \Q$name\E\. View cart/, "add $name: the page says so");
    is($a->{header_count}, $count, "add $name: the header counts $count");
    $added{$name} = $item->{id};
}
is($s->{category}{cards}, 2, 'the category page lists its two products');

# 3. The cart page, and the reminder after the delay
# money as the shop writes it (retarget_currency EUR in the demo)
my $EUR = "\x{20ac}";
my @CART1 = (['Harbor Mug', 2, "${EUR}12.00", "${EUR}24.00"],
             ['Tide Notebook', 1, "${EUR}9.50", "${EUR}9.50"]);
my $c1 = $s->{cart1} || {};
is_deeply(lines($c1->{lines}), \@CART1, 'cart page: the mugs and the notebook');
is($c1->{total}, "${EUR}33.50", 'cart page: total EUR 33.50');
is($c1->{reminder}, undef, 'cart page: no reminder (campaign off)');
is_deeply([ map { $_->{line} } @{ $c1->{lines} || [] } ],
          [ @added{'Harbor Mug', 'Tide Notebook'} ], 'cart page: the lines the API answered');

my $b1 = $s->{back1} || {};
my $rem1 = $b1->{reminder} || {};
note("variant shown: " . ($rem1->{variant} // 'none') . ", after $b1->{loads} load(s) of /")
    if $b1->{loads};
ok($b1->{reminder} && !$rem1->{browse}, 'back after the delay: a reminder of the cart on /');
is($rem1->{label}, 'Your cart', 'reminder: a region "Your cart"');
ok($rem1->{in_viewport}, 'reminder: in the viewport');
ok($rem1->{last_in_body}, 'reminder: the last element of <body>');
is_deeply(lines($rem1->{items}, 1), lines($c1->{lines}, 1),
          'reminder: exactly the lines of the cart page (names, quantities, prices, line totals)');
is($rem1->{count}, 3, 'reminder: 3 items, as the cart');
is($rem1->{total}, $c1->{total}, 'reminder: the total of the cart page (EUR 33.50)');
if (($rem1->{variant} // '') eq 'banner') {
    is_deeply([ sort map { $_->{image} // '' } @{ $rem1->{items} } ],
              ['/img/mug.svg', '/img/notebook.svg'], "reminder: the products' images from the shop's reply");
    is_deeply([ sort map { $_->{href} // '' } @{ $rem1->{items} } ],
              ['/retarget/click?v=banner&to=/product/mug', '/retarget/click?v=banner&to=/product/notebook'],
              "reminder: the items link to the shop's product pages");
}
like($rem1->{cta} // '', qr{^/retarget/click\?v=\w+&to=/cart\z}, 'reminder: its main link goes to /cart');

# 4. Through the reminder to the cart page; + and Remove there
{
    my $t = $s->{to_cart} || {};
    is_deeply(nav_summary($t->{navigations}),
              ["GET $rem1->{cta} 302 $base/cart", 'GET /cart 200'],
              'the reminder\'s link: through the click endpoint to /cart') if $rem1->{cta};
    my $plus = $s->{plus} || {};
    is($plus->{status}, 200, '+ on the mug: PATCH answered 200');
    is($plus->{url}, "/api/cart/items/$added{'Harbor Mug'}", '+ on the mug: names only the line id');
    my $rm = $s->{remove} || {};
    is($rm->{status}, 200, 'Remove the notebook: DELETE answered 200');
    is($rm->{url}, "/api/cart/items/$added{'Tide Notebook'}", 'Remove the notebook: names only the line id');
}
my @CART2 = (['Harbor Mug', 3, "${EUR}12.00", "${EUR}36.00"]);
my $c2 = $s->{cart2} || {};
is_deeply(lines($c2->{lines}), \@CART2, 'cart page after: three mugs');
is($c2->{total}, "${EUR}36.00", 'cart page after: total EUR 36.00');

my $b2 = $s->{back2} || {};
my $rem2 = $b2->{reminder} || {};
ok($b2->{reminder} && !$rem2->{browse}, 'back again after the delay: a reminder of the cart');
is_deeply(lines($rem2->{items}, 1), lines($c2->{lines}, 1),
          'reminder: follows the cart page (three mugs, no notebook)');
is($rem2->{count}, 3, 'reminder: 3 items');
is($rem2->{total}, "${EUR}36.00", 'reminder: total EUR 36.00, as the cart page');
is($rem2->{variant}, $rem1->{variant}, 'reminder: the same variant for the same visitor');

# 5. Checkout and the order
my $ck = $s->{checkout} || {};
my $order = ($ck->{reply} || {})->{order} || {};
is($ck->{status}, 200, 'checkout page: 200');
is($ck->{reminder}, undef, 'checkout page: no reminder');
is($ck->{api_status}, 200, 'place order: the API answers 200');
like($order->{id} // '', qr/^HC-[0-9A-F]{8}\z/, "place order: the shop's order id");
is_deeply([ @$order{qw(total currency)} ], ['36.00', 'EUR'], 'place order: total 36.00 EUR');
is($ck->{url_after}, "/order/$order->{id}", 'the thank-you page of the order') if $order->{id};
is($ck->{order}, $order->{id}, 'the thank-you page names the order');
is($ck->{reminder_on_thanks}, undef, 'thank-you page: no reminder');

my $after = $s->{after} || {};
is($after->{status}, 200, 'after the order: / answers 200');
ok(!$after->{reminder} || $after->{reminder}{browse}, 'after the order: no reminder of the cart')
    or diag(explain $after->{reminder});
ok(($after->{cart} || {})->{empty}, "after the order: the shop's cart is empty");

# 6. The browser stayed on 127.0.0.1, no page script failed
nothing_foreign($r);
is_deeply($r->{dialogs}, [], 'no dialog was opened');
is_deeply($r->{page_errors}, [], "no page script threw");
my @shots = @{ $r->{screenshots} || [] };
is(scalar(grep { -s $_ } @shots), 18, '18 screenshots (9 pages, desktop and phone)')
    or diag(join "\n", @shots);
diag("screenshots: $SHOTS/") if @shots;

#==========================================================================
# What nginx and Redis made of it
#==========================================================================

my ($vid) = map { $_->{value} =~ /^([\w-]{22})\./ ? $1 : () }
            grep { $_->{name} eq 'rt_vid' } @{ $s->{cookies} || [] };
ok($vid, "the visitor's id (rt_vid)");
$vid //= 'none';

sub hgetall {
    my @l = split /\n/, `redis-cli -p $redis_port HGETALL '$_[0]' 2>&1`;
    return { @l % 2 ? () : @l };
}

# the T-shirt was only looked at: what Redis knows of it is the page's
my $p = hgetall('rt:p:tshirt');
is_deeply([ @$p{qw(name price image url)} ],
          ['Lighthouse T-shirt', '24.00', "$base/img/tshirt.svg", "$base/product/tshirt"],
          "rt:p:tshirt (viewed, never added): name, price, image, url from the page's JSON-LD")
    or diag(explain $p);
$p = hgetall('rt:p:mug');
is_deeply([ @$p{qw(name price)} ], ['Harbor Mug', '12.00'], 'rt:p:mug: name and price')
    or diag(explain $p);
my $meta = hgetall("rt:{$vid}:meta");
is_deeply([ grep { /^c:/ } sort keys %$meta ], [], 'the visitor\'s cart in Redis is empty after the order');
ok($meta->{purchased}, 'meta "purchased" is set');
my $email_hash = sha256_hex('visitor+harbor@example.com');
ok((grep { index($_, $email_hash) >= 0 } values %$meta),
   "identify: the meta holds the checkout e-mail's SHA-256")
    or diag(explain $meta);
is_deeply([ grep { /harbor\@example/ } values %$meta ], [], 'identify: never the e-mail itself');

my $stats = {};
my $day = strftime('%Y%m%d', gmtime);
for (1 .. 30) {
    $stats = hgetall("rt:stats:$day");
    last if ($stats->{purchases} // 0) >= 1;
    sleep 0.1;
}
is($stats->{purchases}, 1, 'one purchase counted');
my $variant = $rem1->{variant} // 'banner';
ok(defined $stats->{revenue} && $stats->{revenue} =~ /^36(?:\.0+)?\z|^3600\z/,
   "the order's value is counted as revenue (36.00)")
    or diag(explain $stats);
is($stats->{"revenue:$variant"}, $stats->{revenue},
   "and as revenue of the variant shown ($variant), the visitor having clicked it")
    or diag(explain $stats);
is($stats->{"conversions:$variant"}, 1, "one conversion for $variant");

# the module's decision on each page load of / for this visitor
my @home = map { m{decision=(\S+)} ? $1 : () }
           grep { m{"GET / HTTP/1\.1" 200 } && m{vid=\Q$vid\E } }
           split /\n/, slurp("$rundir/access.log");
note("decisions on /: @home");
is(scalar(grep { $_ eq 'shown' } @home), 2, 'access.log: / showed the reminder twice');
ok(@home && $home[-1] =~ /^(?:purchased|shown)\z/, 'access.log: the last / after the order: ' . ($home[-1] // 'none'));

#==========================================================================
# run-demo.sh stops its children
#==========================================================================

is(stop_demo(), 0, 'run-demo.sh exits 0 on TERM');
for my $name (sort keys %pid) {
    ok(!kill(0, $pid{$name}), "$name (pid $pid{$name}) is gone");
}
like(slurp($demo_out), qr/stopping nginx.*stopping the shop.*stopping redis-server/s,
     'it stopped nginx, then the shop, then redis-server');
my @bad = grep { /\[(?:emerg|alert|crit|error)\]/ } split /\n/, slurp("$rundir/error.log");
is_deeply(\@bad, [], "the demo's error.log has no error");

done_testing();

#==========================================================================
# Helpers
#==========================================================================

# [name, qty, price, line_total] per line, sorted by name when $sort
sub lines {
    my ($list, $sort) = @_;
    my @l = map { [ $_->{name}, $_->{qty}, $_->{price}, $_->{line_total} ] } @{ $list || [] };
    @l = sort { $a->[0] cmp $b->[0] } @l if $sort;
    return \@l;
}

# TERM to run-demo.sh, at most 20 s; its exit status (-1 if killed)
sub stop_demo {
    return -1 unless $demo;
    kill 'TERM', $demo;
    for (1 .. 200) {
        if (waitpid($demo, WNOHANG) == $demo) {
            my $st = $?;
            undef $demo;
            return $st >> 8;
        }
        sleep 0.1;
    }
    kill 'KILL', $demo;
    waitpid($demo, 0);
    kill 'KILL', grep { kill 0, $_ } values %pid;
    undef $demo;
    return -1;
}

END { stop_demo() if $demo }
