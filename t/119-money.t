# Money as the shop writes it: retarget_currency formats the prices, line
# totals and the cart total of the built-in banner and of a template with
# the currency's symbol and minor digits ("$35.00", "€12.50", "¥1200",
# "12.50 kr", "12.500 KWD", "12.50 XYZ"), per location; a template also
# gets the plain numbers (price_value, line_total_value, cart_total_value)
# and the code (currency), and so does {{{data_json}}}.  Without a
# currency, today's plain numbers.  The words around the numbers agree
# with them: "1 item", "2 items", "this one", "these".  nginx -t refuses
# a code that is not three capital letters, and a template comment that
# holds a tag.
#
# The visitors' state is seeded into rt:{vid}:meta (t/080-campaign.t has
# the rules); the bytes compared are UTF-8, the amount and a symbol after
# it are joined by a no-break space (U+00A0).
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis;
use Test::Retarget::Campaign;
use Test::Retarget::Browser ();
use Cwd ();
use JSON::PP ();

use_redis();


my $H = 3600;

my $PAGE = "<html><body><p>content</p></body></html>\n";

# UTF-8, as the page gets it
my $EUR  = "\xe2\x82\xac";
my $GBP  = "\xc2\xa3";
my $YEN  = "\xc2\xa5";
my $NBSP = "\xc2\xa0";

my $TPL = <<'TPL';
<div class="rt-custom">
<t total="{{cart_total}}" value="{{cart_total_value}}" currency="{{currency}}" count="{{cart_count}}" words="{{cart_count}} item{{#cart_plural}}s{{/cart_plural}}"></t>
{{#cart}}<c sku="{{sku}}" price="{{price}}" price_value="{{price_value}}" currency="{{currency}}" line="{{line_total}}" line_value="{{line_total_value}}" last="{{#last}}yes{{/last}}"></c>
{{/cart}}{{#viewed}}<v sku="{{sku}}" price="{{price}}" price_value="{{price_value}}" currency="{{currency}}"></v>
{{/viewed}}<names>{{#viewed}}{{name}}{{^last}}, {{/last}}{{/viewed}}</names>
<script type="application/json" class="rt-data">{{{data_json}}}</script>
</div>
TPL

# every location here differs only by its currency (the server's: EUR)
my @LOCATIONS = (
    [ '/page.html',       'EUR' ],
    [ '/us/page.html',    'USD' ],
    [ '/jp/page.html',    'JPY' ],
    [ '/kw/page.html',    'KWD' ],
    [ '/se/page.html',    'SEK' ],
    [ '/ch/page.html',    'CHF' ],
    [ '/xyz/page.html',   'XYZ' ],
    [ '/plain/page.html', 'off' ],
);

sub msection {
    my ($name, $code) = @_;
    my %pages = ('tpl/all.tpl' => $TPL);
    $pages{substr($_->[0], 1)} = $PAGE for @LOCATIONS;
    $pages{"custom/$_/page.html"} = $PAGE for qw(us jp none);
    $pages{"linked/page.html"} = $PAGE;
    section($name, { http_config => campaign_http(), config => q{
        retarget on;
        retarget_frequency 100 1d pages=100;
        retarget_currency EUR;
        location / { }
        location /us/ { retarget_currency USD; }
        location /jp/ { retarget_currency JPY; }
        location /kw/ { retarget_currency KWD; }
        location /se/ { retarget_currency SEK; }
        location /ch/ { retarget_currency CHF; }
        location /xyz/ { retarget_currency XYZ; }
        location /plain/ { retarget_currency off; }
        location /linked/ { retarget_campaign on link=/cart.html; }
        location /custom/ {
            retarget_variant fancy 1 $TEST_NGINX_HTML_DIR/tpl/all.tpl;
            location /custom/us/ { retarget_currency USD; }
            location /custom/jp/ { retarget_currency JPY; }
            location /custom/none/ { retarget_currency off; }
        }
        location /retarget/ { retarget_control; }
    } }, \%pages, $code);
}

# the custom template's output: the attributes of each tag, the JSON
sub custom {
    my ($body) = @_;
    my ($out) = ($body // '') =~ m{(<div class="rt-custom".*</div>\n?)(?=</body>)}s;
    return undef unless defined $out;
    my %c;
    for my $tag (qw(t c v)) {
        $c{$tag} = [ map { my %a; $a{$1} = $2 while /([\w-]+)="([^"]*)"/g; \%a }
                     $out =~ /<$tag ([^>]*)><\/$tag>/g ];
    }
    ($c{names}) = $out =~ m{<names>(.*?)</names>};
    my ($json) = $out =~ m{<script type="application/json" class="rt-data">(.*?)</script>}s;
    $c{json} = eval { JSON::PP->new->decode($json // '') };   # bytes kept
    return \%c;
}

# what the built-in banner says: heading, each line, the total
sub banner_text {
    my ($body) = @_;
    my $b = banner_of($body) // return undef;
    my ($h) = $b =~ m{<h2>(.*?)</h2>};
    my @lines = $b =~ m{<small>(.*?)</small></div>(?:<b>(.*?)</b>)?</li>}g;
    my ($total) = $b =~ m{<p class="rt-banner-tot">Total <b>(.*?)</b></p>};
    my @l;
    push @l, [ splice @lines, 0, 2 ] while @lines;
    $_->[1] //= '' for @l;
    return { heading => $h, lines => \@l, total => $total };
}

#--------------------------------------------------------------------------
# the built-in banner in each location's currency
#--------------------------------------------------------------------------

msection('the built-in banner, one currency per location', sub {
    my $now = NOW;
    my $A = rvid('money-A');
    seed($A, cart_updated => $now - 2 * $H,
         'c:MUG' => cart_line(ms => ($now - 2 * $H) * 1000, qty => 2,
                              price => '12.50', name => 'Mug'),
         'c:PEN' => cart_line(ms => ($now - 3 * $H) * 1000, qty => 1,
                              price => '10', name => 'Pen'));

    my %want = (
        EUR => [ "${EUR}12.50", "${EUR}25.00", "${EUR}10.00", "${EUR}35.00" ],
        USD => [ '$12.50', '$25.00', '$10.00', '$35.00' ],
        # no minor unit: 12.50 is rounded half up
        JPY => [ "${YEN}13", "${YEN}25", "${YEN}10", "${YEN}35" ],
        KWD => [ map { "$_${NBSP}KWD" } qw(12.500 25.000 10.000 35.000) ],
        SEK => [ map { "$_${NBSP}kr" } qw(12.50 25.00 10.00 35.00) ],
        CHF => [ map { "CHF${NBSP}$_" } qw(12.50 25.00 10.00 35.00) ],
        XYZ => [ map { "$_${NBSP}XYZ" } qw(12.50 25.00 10.00 35.00) ],
        off => [ qw(12.50 25.00 10.00 35.00) ],
    );

    for my $loc (@LOCATIONS) {
        my ($uri, $cur) = @$loc;
        my $r = page($A, uri => $uri);
        is($r->{decision}, 'shown', "$cur: shown");
        my $t = banner_text($r->{body}) or do { diag($r->{body}); next };
        my ($mug, $mug_line, $pen, $total) = @{ $want{$cur} };
        is($t->{heading}, '3 items left in your cart', "$cur: 3 items");
        is_deeply($t->{lines}, [ [ "2 &times; $mug", $mug_line ],
                                 [ "1 &times; $pen", $pen ] ],
                  "$cur: the lines, $mug and $pen");
        is($t->{total}, $total, "$cur: the total, $total");
        # the log variable stays a plain number, whatever the currency
        is($r->{total}, '35.00', "$cur: \$retarget_cart_total is 35.00");
    }

    # a shop in yen writes whole yen
    my $J = rvid('money-J');
    seed($J, cart_updated => $now - 2 * $H,
         'c:TEA' => cart_line(ms => ($now - 2 * $H) * 1000, qty => 3,
                              price => '1200', name => 'Tea'),
         'c:CUP' => cart_line(ms => ($now - 3 * $H) * 1000, qty => 1,
                              price => '350.5', name => 'Cup'));
    my $t = banner_text(page($J, uri => '/jp/page.html')->{body}) || {};
    is_deeply($t->{lines}, [ [ "3 &times; ${YEN}1200", "${YEN}3600" ],
                             [ "1 &times; ${YEN}351", "${YEN}351" ] ],
              'JPY: 1200 yen, 3 of them 3600; 350.5 rounded to 351');
    is($t->{total}, "${YEN}3951", 'JPY: the total, 3950.50 rounded: 3951');
});

#--------------------------------------------------------------------------
# singular and plural, a line without a price
#--------------------------------------------------------------------------

msection('singular and plural, a line without a price', sub {
    my $now = NOW;
    my ($ONE, $NOPRICE, $V1, $V2) = map { rvid("money-$_") } qw(one noprice v1 v2);
    seed($ONE, cart_updated => $now - 2 * $H,
         'c:MUG' => cart_line(ms => ($now - 2 * $H) * 1000, qty => 1,
                              price => '12.50', name => 'Mug'));
    seed($NOPRICE, cart_updated => $now - 2 * $H,
         'c:MUG' => cart_line(ms => ($now - 2 * $H) * 1000, qty => 2,
                              price => '', name => 'Mug'));
    seed($V1, 'v:HAT' => view_line(ms => ($now - 2 * $H) * 1000,
                                   price => '5', name => 'Hat',
                                   url => '/p/hat'));
    seed($V2, 'v:HAT' => view_line(ms => ($now - 2 * $H) * 1000,
                                   price => '5', name => 'Hat'),
              'v:CAP' => view_line(ms => ($now - 3 * $H) * 1000,
                                   price => '', name => 'Cap'));

    my $t = banner_text(page($ONE, uri => '/us/page.html')->{body}) || {};
    is($t->{heading}, '1 item left in your cart', 'one: "1 item"');
    is_deeply($t->{lines}, [ [ '1 &times; $12.50', '$12.50' ] ], 'one: the line');

    $t = banner_text(page($NOPRICE, uri => '/us/page.html')->{body}) || {};
    is($t->{heading}, '2 items left in your cart', 'no price: "2 items"');
    is_deeply($t->{lines}, [ [ 'Quantity: 2', '' ] ],
              'no price: the quantity, no "2 x " and no line total');
    is($t->{total}, '$0.00', 'no price: the total is $0.00');

    my $b = banner_of(page($V1, uri => '/us/page.html')->{body}) // '';
    like($b, qr{<h2>Still thinking about this one\?</h2>}, 'one viewed: "this one"');
    like($b, qr{>Hat</a><small>\$5\.00</small></div>}, 'one viewed: its price, $5.00');

    # the main link: a cart reminder's to link=, a browse reminder's to
    # the product (the cart page would say that the cart is empty)
    $b = banner_of(page($V1, uri => '/linked/page.html')->{body}) // '';
    like($b, qr{<a class="rt-banner-cta" href="/retarget/click\?v=banner&amp;to=/p/hat">Take another look</a>},
         'one viewed, link=/cart.html: the main link goes to the product');
    $b = banner_of(page($ONE, uri => '/linked/page.html')->{body}) // '';
    like($b, qr{<a class="rt-banner-cta" href="/retarget/click\?v=banner&amp;to=/cart\.html">View your cart</a>},
         'a cart, link=/cart.html: the main link goes to the cart');

    $b = banner_of(page($V2, uri => '/us/page.html')->{body}) // '';
    like($b, qr{<h2>Still thinking about these\?</h2>}, 'two viewed: "these"');
    like($b, qr{>Cap</a></div>}, 'two viewed: no price, no empty <small>');

    my $c = custom(page($V2, uri => '/custom/us/page.html')->{body}) || {};
    is($c->{names}, 'Hat, Cap', 'a template: names joined, no trailing comma ({{^last}})');
    $c = custom(page($ONE, uri => '/custom/us/page.html')->{body}) || {};
    is($c->{t}[0]{words}, '1 item', 'a template: "1 item" ({{#cart_plural}})');
    is($c->{c}[0]{last}, 'yes', 'a template: the only line is the last');
});

#--------------------------------------------------------------------------
# a template: money and numbers, in HTML and in data_json
#--------------------------------------------------------------------------

msection('a template gets money and the plain numbers', sub {
    my $now = NOW;
    my $A = rvid('money-tpl');
    seed($A, cart_updated => $now - 2 * $H,
         'c:MUG' => cart_line(ms => ($now - 2 * $H) * 1000, qty => 2,
                              price => '12.50', name => 'Mug'),
         'c:PEN' => cart_line(ms => ($now - 3 * $H) * 1000, qty => 1,
                              price => '1200', name => 'Pen'),
         'v:HAT' => view_line(ms => ($now - 4 * $H) * 1000, price => '5',
                              name => 'Hat'));

    for my $case (
        [ us => 'USD', '$', '', '.00', '.50' ],
        [ jp => 'JPY', $YEN, '', '', '' ],
        [ none => '', '', '', '.00', '.50' ],
    ) {
        my ($dir, $code, $sym, undef, $z, $half) = @$case;
        my $r = page($A, uri => "/custom/$dir/page.html");
        is($r->{decision}, 'shown', "$dir: shown");
        my $c = custom($r->{body}) or do { diag($r->{body}); next };
        my $mug = $code eq 'JPY' ? '13' : "12$half";
        my $mugl = "25$z";
        my $total = $code eq 'JPY' ? '1225' : "1225$z";
        is_deeply($c->{t}[0], { total => "$sym$total", value => $total,
                                currency => $code, count => 3,
                                words => '3 items' },
                  "$dir: cart_total, cart_total_value, currency");
        is_deeply($c->{c}[0], { sku => 'MUG', price => "$sym$mug",
                                price_value => $mug, currency => $code,
                                line => "$sym$mugl", line_value => $mugl,
                                last => '' },
                  "$dir: a line: price, price_value, line_total, line_total_value");
        is_deeply($c->{v}[0], { sku => 'HAT', price => "${sym}5$z",
                                price_value => "5$z", currency => $code },
                  "$dir: a viewed product: price, price_value, currency");

        my $j = $c->{json} || {};
        is_deeply([ @$j{qw(cart_total cart_total_value currency)} ],
                  [ "$sym$total", $total, $code ], "$dir: data_json: the total twice, the code");
        is_deeply([ @{ $j->{cart}[0] || {} }{qw(price price_value line_total
                                                line_total_value currency)} ],
                  [ "$sym$mug", $mug, "$sym$mugl", $mugl, $code ],
                  "$dir: data_json: a line's money twice");
        is_deeply([ @{ $j->{viewed}[0] || {} }{qw(price price_value currency)} ],
                  [ "${sym}5$z", "5$z", $code ], "$dir: data_json: a viewed product's");
    }
});

#--------------------------------------------------------------------------
# the item's own currency (the catalogue's) wins over the location's
#--------------------------------------------------------------------------

# item.currency is filled from rt:p:SKU by ngx_http_retarget_catalog.c

msection("the catalogue's currency wins over retarget_currency", sub {
    my $now = NOW;
    my $A = rvid('money-cat');
    seed($A, cart_updated => $now - 2 * $H,
         'c:MUG' => cart_line(ms => ($now - 2 * $H) * 1000, qty => 2,
                              price => '12.50', name => 'Mug'),
         'c:PEN' => cart_line(ms => ($now - 3 * $H) * 1000, qty => 1,
                              price => '10.00', name => 'Pen'));
    redis_cmd('HSET', 'rt:p:MUG', name => 'Mug', price => '12.50',
              currency => 'GBP');
    redis_cmd('HSET', 'rt:p:PEN', name => 'Pen', price => '10.00',
              currency => 'GBP');
    my $t = banner_text(page($A, uri => '/page.html')->{body}) || {};
    is_deeply($t->{lines}, [ [ "2 &times; ${GBP}12.50", "${GBP}25.00" ],
                             [ "1 &times; ${GBP}10.00", "${GBP}10.00" ] ],
              'GBP from the catalogue, not the location\'s EUR');
    is($t->{total}, "${GBP}35.00", 'the total in GBP');
    # one line in another currency: the total is a number, not money (the
    # catalogue is current within 2 s of a change)
    redis_cmd('HSET', 'rt:p:PEN', currency => 'USD');
    eventually(sub {
        $t = banner_text(page($A, uri => '/page.html')->{body}) || {};
        return ($t->{total} // '') eq '35.00';
    }, 2.5);
    is_deeply($t->{lines}, [ [ "2 &times; ${GBP}12.50", "${GBP}25.00" ],
                             [ '1 &times; $10.00', '$10.00' ] ],
              'each line in its own currency');
    is($t->{total}, '35.00', 'GBP and USD: the total is a plain number');
});

#--------------------------------------------------------------------------
# the notice: whole days, rounded up, "1 day"
#--------------------------------------------------------------------------

for my $case (['12h', '1 day'], ['1d', '1 day'], ['36h', '2 days'], ['30d', '30 days']) {
    my ($retention, $days) = @$case;
    section("the notice with retarget_retention $retention", {
        http_config => campaign_http() . "retarget_retention $retention;\n",
        config => q{
            retarget on;
            location / { }
            location /optin/ { retarget_consent optin; }
            location /custom/ { retarget_notice $TEST_NGINX_HTML_DIR/notice.html; }
        },
    }, { 'page.html' => $PAGE, 'optin/page.html' => $PAGE,
         'custom/page.html' => $PAGE,
         'notice.html' => scalar Test::Retarget::Browser::slurp('conf-examples/notice.html') },
    sub {
        for my $uri ('/page.html', '/optin/page.html', '/custom/page.html') {
            my $r = http_req(uri => $uri, headers => ['Accept: text/html']);
            like($r->{body}, qr/deleted after\s+\Q$days\E without a visit/,
                 "$uri: deleted after $days");
        }
    });
}

#--------------------------------------------------------------------------
# nginx -t
#--------------------------------------------------------------------------

sub conf_test {
    my ($http, $config) = @_;
    (my $h = campaign_http()) =~ s/\$TEST_NGINX_REDIS_PORT/1/;
    Test::Retarget::write_nginx_conf({ http_config => $h . $http,
                                       config => $config // 'retarget on;' });
    return Test::Retarget::nginx_config_test();
}

for my $bad ('eur', 'EURO', 'EU', 'E1R', "${EUR}", '"E R"') {
    my ($st, $out) = conf_test("retarget_currency $bad;\n");
    ok($st != 0, "nginx -t fails: retarget_currency $bad");
    like($out, qr/\[emerg\] invalid currency "\Q${\ ($bad =~ s{^"|"$}{}gr)}\E": an ISO 4217 code is three capital letters, such as "EUR", "USD" or "JPY" \(or "off"\) in \S+nginx\.conf:\d+/,
         "the message names the value and what a code is: $bad");
}
{
    my ($st, $out) = conf_test('', "retarget on;\nretarget_currency EUR;\n"
                                   . "retarget_currency USD;\n");
    ok($st != 0, 'nginx -t fails: two retarget_currency in one block');
    like($out, qr/\[emerg\] "retarget_currency" directive is duplicate in \S+nginx\.conf:\d+/,
         'the message: is duplicate');
    ($st, $out) = conf_test("retarget_currency EUR USD;\n");
    like($out, qr/\[emerg\] invalid number of arguments in "retarget_currency" directive/,
         'two codes: invalid number of arguments');
    ($st, $out) = conf_test("retarget_currency XYZ;\n",
                            "retarget on;\nlocation / { retarget_currency off; }\n");
    is($st, 0, 'nginx -t accepts XYZ (valid, not in the table) and off')
        or diag($out);
}

# A comment that holds a tag: its first "}}" would end it
{
    write_file('bad.tpl', "<div>\n{{! shows {{cart_total}} and more }}\n</div>\n");
    my ($st, $out) = conf_test('', "retarget on;\nlocation / { retarget_variant v 1 "
                                   . html_dir() . "/bad.tpl; }\n");
    ok($st != 0, 'nginx -t fails: a comment holding a tag');
    like($out, qr/\[emerg\] a comment cannot hold "\{\{" \(its first "\}\}" ends it\), in "\{\{! shows \{\{cart_total\}\}" in template "\S+bad\.tpl" line 2 in \S+nginx\.conf:\d+/,
         'the message names the template, its line and the comment');
    write_file('ok.tpl', "<div>{{! a comment, } and { alone are fine }}</div>\n");
    ($st, $out) = conf_test('', "retarget on;\nlocation / { retarget_variant v 1 "
                                . html_dir() . "/ok.tpl; }\n");
    is($st, 0, 'a comment with single braces is fine') or diag($out);
}

# every shipped template compiles (the browser test renders them)
for my $f (glob('conf-examples/*.html')) {
    my $path = Cwd::abs_path($f);
    my $dir = $f =~ /notice/ ? "retarget_notice $path;" : "retarget_variant v 1 $path;";
    my ($st, $out) = conf_test('', "retarget on;\nlocation / { $dir }\n");
    is($st, 0, "nginx -t accepts $f") or diag($out);
}

done_testing();
