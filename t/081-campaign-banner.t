# The reminder's content: a template using every variable of the SPEC
# (and the design's return_to, browse and dotted names), hostile product
# data rendered harmless in HTML and in {{{data_json}}}, and the built-in
# banner (accessible, no script, no external URL but product images, its
# links through the click endpoint, its dismiss form).
#
# The visitor's state is seeded into rt:{vid}:meta in the design's
# formats; see t/080-campaign.t for the decision rules themselves.
use strict;
use warnings;
use utf8;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis;
use Test::Retarget::Campaign;
use JSON::PP ();
use Time::HiRes qw(sleep);

use_redis();


my $H = 3600;

my $PAGE = "<html><body><p>content</p></body></html>\n";

# Every variable; attributes are double-quoted, so that {{x}} escaping is
# what keeps hostile values inside them.
my $TPL = <<'TPL';
<div class="rt-custom" data-variant="{{variant}}" data-count="{{cart_count}}" data-total="{{cart_total}}" data-click="{{click_url}}" data-control="{{control}}" data-privacy="{{privacy_url}}" data-return="{{return_to}}" data-browse="{{#browse}}yes{{/browse}}{{^browse}}no{{/browse}}">
{{#cart}}<c sku="{{sku}}" name="{{name}}" price="{{price}}" qty="{{qty}}" image="{{image}}" url="{{url}}" line="{{line_total}}" click="{{click_url}}"></c>
{{/cart}}{{^cart}}<nocart></nocart>{{/cart}}
{{#viewed}}<v sku="{{sku}}" name="{{name}}" price="{{price}}" image="{{image}}" url="{{url}}" click="{{click_url}}"></v>
{{/viewed}}
{{#incentive}}<inc code="{{code}}" text="{{text}}"></inc>{{/incentive}}{{^incentive}}<noinc></noinc>{{/incentive}}
<dot code="{{incentive.code}}" text="{{incentive.text}}"></dot>
<script type="application/json" class="rt-data">{{{data_json}}}</script>
</div>
TPL

sub bsection {
    my ($name, $conf, $code) = @_;
    section($name, { http_config => campaign_http(), config => qq{
        retarget on;
        retarget_frequency 100 1d;
        retarget_privacy_url /privacy?from=banner&x=1;
        $conf
        location / { }
        location /custom/ {
            retarget_variant fancy 1 \$TEST_NGINX_HTML_DIR/tpl/all.tpl;
        }
        location /retarget/ { retarget_control; }
    } }, { 'page.html' => $PAGE, 'custom/page.html' => $PAGE,
           'tpl/all.tpl' => $TPL }, $code);
}

sub unescape_html {
    my ($s) = @_;
    return undef unless defined $s;
    $s =~ s/&lt;/</g;
    $s =~ s/&gt;/>/g;
    $s =~ s/&quot;/"/g;
    $s =~ s/&#39;/'/g;
    $s =~ s/&amp;/&/g;
    return $s;
}

sub unescape_uri {
    my ($s) = @_;
    $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    return $s;
}

# the custom template's output: attributes of the root and of each tag
sub custom {
    my ($body) = @_;
    my ($out) = ($body // '') =~ m{(<div class="rt-custom".*</div>\n?)(?=</body>)}s;
    return undef unless defined $out;
    my %c = (raw => $out);
    my $attrs = sub {
        my ($s) = @_;
        my %a;
        $a{$1} = $2 while $s =~ /([\w-]+)="([^"]*)"/g;
        return \%a;
    };
    ($c{root}) = map { $attrs->($_) } $out =~ /^<div ([^>]*)>/;
    for my $tag (qw(c v inc dot)) {
        $c{$tag} = [ map { $attrs->($_) } $out =~ /<$tag ([^>]*)><\/$tag>/g ];
    }
    $c{nocart} = $out =~ /<nocart>/ ? 1 : 0;
    $c{noinc} = $out =~ /<noinc>/ ? 1 : 0;
    ($c{json_raw}) = $out =~
        m{<script type="application/json" class="rt-data">(.*?)</script>}s;
    $c{json} = eval { JSON::PP->new->utf8->decode($c{json_raw} // '') };
    $c{json_error} = $@;
    return \%c;
}

# the values of a tag's attributes as the browser reads them
sub decoded {
    my ($a) = @_;
    my %d = map { $_ => unescape_html($a->{$_}) } keys %$a;
    utf8::decode($_) for values %d;
    return \%d;
}

#--------------------------------------------------------------------------
# every variable
#--------------------------------------------------------------------------

bsection('a template with every variable', q{
    retarget_incentive 1h SAVE5 "5 off: today & tomorrow";
}, sub {
    my $now = NOW;
    my ($A, $B) = map { rvid("tpl-$_") } qw(A B);
    seed($A, cart_updated => $now - 2 * $H, last_reminder => $now - $H,
         'c:MUG' => cart_line(ms => ($now - 2 * $H) * 1000, qty => 2,
                              price => '12.50', name => 'Big Mug',
                              image => '/i/mug.png', url => '/p/mug'),
         'c:TEE' => cart_line(ms => ($now - 3 * $H) * 1000, qty => 1,
                              price => '19.90', name => 'Tee',
                              image => 'https://cdn.example/tee.jpg',
                              url => '/p/tee?c=red&s=M'),
         'v:HAT' => view_line(ms => ($now - 4 * $H) * 1000, price => '5.00',
                              name => 'Hat', image => '/i/hat.png',
                              url => '/p/hat'),
         'v:MUG' => view_line(ms => ($now - 5 * $H) * 1000, name => 'Big Mug'));
    seed($B, 'v:HAT' => view_line(ms => ($now - 2 * $H) * 1000,
                                  price => '5.00', name => 'Hat',
                                  image => '/i/hat.png', url => '/p/hat'));

    my $uri = '/custom/page.html?a=1&b=2';
    my $r = page($A, uri => $uri);
    is($r->{decision}, 'shown', 'A: shown');
    is($r->{variant}, 'fancy', 'A: the template\'s variant');
    my $c = custom($r->{body});
    ok($c, 'A: the template was rendered') or return diag($r->{body});
    like($r->{body}, qr{<p>content</p><div class="rt-custom"}, 'A: before </body>');

    my $root = decoded($c->{root});
    is($root->{'data-variant'}, 'fancy', '{{variant}}');
    is($root->{'data-count'}, 3, '{{cart_count}}');
    is($root->{'data-total'}, '44.90', '{{cart_total}}');
    is($root->{'data-click'}, '/retarget/click?v=fancy&to=/p/mug',
       '{{click_url}}: the newest line\'s page, through the click endpoint');
    is($root->{'data-control'}, '/retarget/', '{{control}}');
    is($root->{'data-privacy'}, '/privacy?from=banner&x=1', '{{privacy_url}}');
    is(unescape_uri($root->{'data-return'}), $uri,
       '{{return_to}}: the current page');
    unlike($root->{'data-return'}, qr/[?&#]/,
           '{{return_to}}: escaped for a query value');
    is($root->{'data-browse'}, 'no', '{{#browse}}: false');
    is($c->{nocart}, 0, '{{^cart}} not rendered');

    is(scalar @{ $c->{c} }, 2, '{{#cart}}: two lines');
    my ($mug, $tee) = map { decoded($_) } @{ $c->{c} };
    is_deeply($mug, { sku => 'MUG', name => 'Big Mug', price => '12.50',
                      qty => 2, image => '/i/mug.png', url => '/p/mug',
                      line => '25.00',
                      click => '/retarget/click?v=fancy&to=/p/mug' },
              'cart item: every field, newest first');
    is($tee->{image}, 'https://cdn.example/tee.jpg', 'cart item: CDN image');
    is($tee->{line}, '19.90', 'cart item: line_total');
    like($tee->{click}, qr{^/retarget/click\?v=fancy&to=}, 'cart item: click_url');
    my ($to) = $tee->{click} =~ /&to=(.*)$/;
    unlike($to, qr/[?&]/, 'cart item: the target is escaped');
    is(unescape_uri($to), '/p/tee?c=red&s=M', 'cart item: the target');

    is(scalar @{ $c->{v} }, 1, '{{#viewed}}: only what is not in the cart');
    is_deeply(decoded($c->{v}[0]),
              { sku => 'HAT', name => 'Hat', price => '5.00',
                image => '/i/hat.png', url => '/p/hat',
                click => '/retarget/click?v=fancy&to=/p/hat' },
              'viewed item: every field');

    is_deeply([ map { decoded($_) } @{ $c->{inc} } ],
              [ { code => 'SAVE5', text => '5 off: today & tomorrow' } ],
              '{{#incentive}}: code and text');
    is($c->{noinc}, 0, '{{^incentive}} not rendered');
    is_deeply(decoded($c->{dot}[0]),
              { code => 'SAVE5', text => '5 off: today & tomorrow' },
              '{{incentive.code}} and {{incentive.text}}');

    ok($c->{json}, '{{{data_json}}} is JSON') or diag($c->{json_error});
    my $j = $c->{json} || {};
    is($j->{variant}, 'fancy', 'json: variant');
    ok(JSON::PP::is_bool($j->{browse}) && !$j->{browse}, 'json: browse false');
    is($j->{cart_count}, 3, 'json: cart_count');
    is(JSON::PP->new->canonical->encode([$j->{cart_count}]), '[3]',
       'json: cart_count is a number');
    is($j->{cart_total}, '44.90', 'json: cart_total');
    is($j->{cart_total_value}, '44.90', 'json: cart_total_value');
    is($j->{currency}, '', 'json: currency (none configured)');
    is_deeply($j->{cart}, [
        { sku => 'MUG', name => 'Big Mug', price => '12.50', qty => 2,
          price_value => '12.50', currency => '',
          image => '/i/mug.png', url => '/p/mug', line_total => '25.00',
          line_total_value => '25.00' },
        { sku => 'TEE', name => 'Tee', price => '19.90', qty => 1,
          price_value => '19.90', currency => '',
          image => 'https://cdn.example/tee.jpg', url => '/p/tee?c=red&s=M',
          line_total => '19.90', line_total_value => '19.90' } ],
              'json: cart');
    is_deeply($j->{viewed}, [
        { sku => 'HAT', name => 'Hat', price => '5.00', price_value => '5.00',
          currency => '', image => '/i/hat.png', url => '/p/hat' } ],
              'json: viewed');
    ok(!exists $j->{cart_plural} && !exists $j->{viewed_plural}
       && !exists $j->{cart}[0]{last},
       'json: no cart_plural, viewed_plural or last (presentation only)');
    is_deeply($j->{incentive}, { code => 'SAVE5',
                                 text => '5 off: today & tomorrow' },
              'json: incentive');
    unlike($c->{json_raw}, qr/[<>&]/, 'json: no raw < > &');

    # B: a browse reminder, no cart, no incentive
    $r = page($B, uri => '/custom/page.html');
    is($r->{decision}, 'shown', 'B: shown');
    $c = custom($r->{body}) or return diag($r->{body});
    $root = decoded($c->{root});
    is($root->{'data-browse'}, 'yes', 'B: {{#browse}} true');
    is($root->{'data-count'}, 0, 'B: cart_count 0');
    is($root->{'data-total'}, '0.00', 'B: cart_total 0.00');
    is($root->{'data-click'}, '/retarget/click?v=fancy&to=/p/hat',
       'B: the main link to the newest view');
    is($c->{nocart}, 1, 'B: {{^cart}} rendered');
    is(scalar @{ $c->{c} }, 0, 'B: no cart items');
    is(scalar @{ $c->{v} }, 1, 'B: the view');
    is($c->{noinc}, 1, 'B: {{^incentive}} rendered');
    is(scalar @{ $c->{inc} }, 0, 'B: no {{#incentive}}');
    is_deeply(decoded($c->{dot}[0]), { code => '', text => '' },
              'B: dotted names of an absent incentive are empty');
    ok($c->{json}, 'B: data_json is JSON') or diag($c->{json_error});
    ok(JSON::PP::is_bool($c->{json}{browse}) && $c->{json}{browse},
       'B: json browse true');
    ok(exists $c->{json}{incentive} && !defined $c->{json}{incentive},
       'B: json incentive null');
    is_deeply($c->{json}{cart}, [], 'B: json cart []');
});

#--------------------------------------------------------------------------
# hostile product data
#--------------------------------------------------------------------------

my $LS = "\x{2028}";
my $PS = "\x{2029}";

# sku => [name, image, url, price]
my %HOSTILE = (
    '<img src=x onerror=alert(1)>' =>
        ['<script>alert(1)</script>', 'javascript:alert(1)',
         'javascript:alert(1)', '1.00'],
    'Q"\'&' =>
        [q{He said "hi" & 'bye'}, 'data:image/svg+xml;base64,PHN2Zz4=',
         '//evil.com/x', '2.00'],
    'S' =>
        ["</script><script>alert(2)</script>${LS}line${PS}para <!-- x",
         '//evil.com/i.png', '/\\evil.com/x', '3.00'],
    'I' =>
        ['quote', 'https://cdn.example/x.png" onerror="alert(3)',
         '/p/x" onmouseover="alert(4)', '4.00'],
    'J' =>
        ['JaVa', ' javascript:alert(5)', 'JAVASCRIPT:alert(6)', '5.00'],
    'K' =>
        ['ok', 'HTTPS://cdn.example/ok.png', '/p/ok?a=<b>', '6.00'],
    'L' =>
        ['ctl', "/i/a\x01b.png", "/p/a\x0db", '7.00'],
);

sub bytes { my $s = shift; utf8::encode($s); $s }

sub seed_hostile {
    my ($vid, $now) = @_;
    my $i = 0;
    seed($vid, cart_updated => $now - 2 * $H,
         map { my $h = $HOSTILE{$_};
               ("c:" . bytes($_) => bytes(cart_line(
                    ms => ($now - 2 * $H - $i++) * 1000, name => $h->[0],
                    image => $h->[1], url => $h->[2], price => $h->[3]))) }
         sort keys %HOSTILE);
}

# what survives: a same-site path for url, that or http(s) for images
my %URL_OK = ('/p/x" onmouseover="alert(4)' => 1, '/p/ok?a=<b>' => 1);
my %IMG_OK = ('HTTPS://cdn.example/ok.png' => 1);

# Structural: every tag and attribute is one the template or the built-in
# banner has (hostile text can only be text or inside a quoted value), and
# every URL-valued attribute is empty, a same-site path or http(s).
my %TAGS = map { $_ => 1 } qw(div c v inc dot nocart noinc script style h2
                             form button p b br strong ul li img i a small
                             details summary);
my %ATTRS = map { $_ => 1 } qw(class role aria-label data-rt-variant
    data-rt-at data-rt-esc style
    data-variant data-count data-total data-click data-control data-privacy
    data-return data-browse sku name price qty image url line click code text
    type method action href src alt width height loading);
my %URLISH = map { $_ => 1 } qw(href src image url click action data-click);

# the script every built-in overlay ends with: the module's fixed text
my $OVERLAY_SCRIPT = qr{<script>\(function\(b\)\{var d=document,.*?\}\)\(document\.currentScript\.parentNode\)</script>}s;

sub no_active_content {
    my ($html, $name, $scripts) = @_;
    (my $h = $html) =~
        s{(<script type="application/json"[^>]*>).*?(</script>)}{$1$2}s;
    # the built-in overlays' own script (Escape, see notice.h), fixed text
    $scripts++ if $h =~ s{$OVERLAY_SCRIPT}{<script></script>};
    $h =~ s{(<style>).*?(</style>)}{$1$2}s;
    my (@tags, @attrs, @urls);
    my $nscript = 0;
    while ($h =~ /<(\/?)([^\s>\/]*)([^>]*)>/g) {
        my ($close, $tag, $rest) = ($1, lc $2, $3);
        push @tags, $tag unless $TAGS{$tag};
        $nscript++ if $tag eq 'script' && !$close;
        while ($rest =~ /([^\s="]+)(?:="([^"]*)")?/g) {
            my ($a, $v) = (lc $1, $2);
            push @attrs, "<$tag $a>" unless $ATTRS{$a};
            next unless $URLISH{$a} && defined $v;
            my $d = unescape_html($v);
            push @urls, "<$tag $a=$d>"
                unless $d eq '' || $d =~ m{^/(?![/\\])} || $d =~ m{^https?://}i;
        }
    }
    is($nscript, $scripts, "$name: no <script> but the template's");
    is_deeply(\@tags, [], "$name: no other tag");
    is_deeply(\@attrs, [], "$name: no other attribute (no on*= handler)");
    is_deeply(\@urls, [], "$name: no javascript:, data: or //host URL");
}

# An item whose url is unsafe gets an empty click_url; printed with
# {{click_url}} it must be a clean empty string (under valgrind too).
bsection('hostile product data in a template', q{
    retarget_incentive 1h "<b>X</b>" "Save & <i>more</i> \"now\"";
}, sub {
    my $now = NOW;
    my $A = rvid('hostile-A');
    seed_hostile($A, $now);
    seed($A, last_reminder => $now - $H);
    my $V = rvid('hostile-V');
    seed($V, map { my $h = $HOSTILE{$_};
                   ("v:" . bytes($_) => bytes(view_line(
                        ms => ($now - 2 * $H) * 1000 - length $_,
                        name => $h->[0], image => $h->[1], url => $h->[2]))) }
             sort keys %HOSTILE);

    my $r = page($A, uri => '/custom/page.html');
    is($r->{decision}, 'shown', 'A: shown');
    my $c = custom($r->{body}) or return diag($r->{body});
    no_active_content($c->{raw}, 'A', 1);
    my @closing = $c->{raw} =~ m{</script}gi;
    is(scalar @closing, 1, 'A: one </script>: the template\'s');
    unlike($c->{json_raw}, qr/\xe2\x80[\xa8\xa9]/,
           'A: no raw U+2028/U+2029 in data_json');
    unlike($c->{json_raw}, qr/[<>&]/, 'A: no raw < > & in data_json');
    unlike($c->{raw}, qr/[\x00-\x08\x0b\x0c\x0e-\x1f]/,
           'A: no control characters');

    my %items = map { my $d = decoded($_); ($d->{sku} => $d) } @{ $c->{c} };
    is(scalar keys %items, scalar keys %HOSTILE, 'A: every line listed');
    for my $sku (sort keys %HOSTILE) {
        my ($name, $image, $url) = @{ $HOSTILE{$sku} };
        my $it = $items{$sku};
        ok($it, "A: sku $sku listed") or next;
        is($it->{name}, $name, "A $sku: the name reads as it was stored");
        is($it->{image}, $IMG_OK{$image} ? $image : '',
           "A $sku: image " . ($IMG_OK{$image} ? 'kept' : 'emptied'));
        is($it->{url}, $URL_OK{$url} ? $url : '',
           "A $sku: url " . ($URL_OK{$url} ? 'kept' : 'emptied'));
        if ($URL_OK{$url}) {
            my ($to) = $it->{click} =~ m{^/retarget/click\?v=fancy&to=(.*)$};
            is(unescape_uri($to // ''), $url, "A $sku: click_url to the url");
        } else {
            is($it->{click}, '', "A $sku: no click_url");
        }
    }

    ok($c->{json}, 'A: data_json parses') or diag($c->{json_error});
    my %j = map { ($_->{sku} => $_) } @{ $c->{json}{cart} || [] };
    for my $sku (sort keys %HOSTILE) {
        my ($name, $image, $url) = @{ $HOSTILE{$sku} };
        is($j{$sku}{name}, $name, "json $sku: the original name");
        is($j{$sku}{image}, $IMG_OK{$image} ? $image : '',
           "json $sku: image");
        is($j{$sku}{url}, $URL_OK{$url} ? $url : '', "json $sku: url");
    }
    is_deeply(decoded($c->{inc}[0]),
              { code => '<b>X</b>', text => 'Save & <i>more</i> "now"' },
              'A: the configured incentive escaped, read as configured');
    is_deeply($c->{json}{incentive},
              { code => '<b>X</b>', text => 'Save & <i>more</i> "now"' },
              'json: the incentive');

    # the browse reminder of the same products
    $r = page($V, uri => '/custom/page.html');
    is($r->{decision}, 'shown', 'V: shown');
    $c = custom($r->{body}) or return diag($r->{body});
    no_active_content($c->{raw}, 'V', 1);
    ok($c->{json}, 'V: data_json parses') or diag($c->{json_error});
    is(scalar @{ $c->{v} }, 4, 'V: four viewed products');
    for my $it (map { decoded($_) } @{ $c->{v} }) {
        my ($name, $image, $url) = @{ $HOSTILE{ $it->{sku} } || [] };
        is($it->{name}, $name, "V $it->{sku}: name");
        is($it->{url}, $URL_OK{$url // ''} ? $url : '', "V $it->{sku}: url");
    }
    is(decoded($c->{root})->{'data-click'}, decoded($c->{v}[0])->{click},
       'V: the main link is the newest view\'s (empty when unsafe)');

    # a hostile page address in return_to
    $r = page($A, uri => '/custom/page.html?x="><script>alert(7)</script>');
    $c = custom($r->{body}) or return diag($r->{body});
    no_active_content($c->{raw}, 'hostile URI', 1);
    is(unescape_uri(unescape_html($c->{root}{'data-return'})),
       '/custom/page.html?x="><script>alert(7)</script>',
       'hostile URI: return_to reads back as the address');

    # the built-in banner with the same data
    $r = page($A);
    is($r->{decision}, 'shown', 'built-in: shown');
    my $b = banner_of($r->{body}) // '';
    ok(length $b, 'built-in: a banner');
    no_active_content($b, 'built-in', 0);
    (my $rest = $b) =~ s{$OVERLAY_SCRIPT}{};
    unlike($rest, qr{</?script}i, 'built-in: no script but its own');
    like($b, qr{<strong>&lt;b&gt;X&lt;/b&gt;</strong>},
         'built-in: the code escaped');
    like($b, qr{<b>Save &amp; &lt;i&gt;more&lt;/i&gt; &quot;now&quot;</b>},
         'built-in: the text escaped');
    like($b, qr{>&lt;script&gt;alert\(1\)&lt;/script&gt;</a>},
         'built-in: the name escaped');
});

bsection('names that are not UTF-8', '', sub {
    my $now = NOW;
    my $A = rvid('bytes-A');
    seed($A, cart_updated => $now - 2 * $H,
         "c:\xff\xfe" => cart_line(ms => ($now - 2 * $H) * 1000,
                                   name => "bad \xc3\x28 bytes",
                                   url => "/p/\xff"),
         'c:OK' => cart_line(ms => ($now - 3 * $H) * 1000, name => 'Fine'));
    my $r = page($A, uri => '/custom/page.html');
    is($r->{decision}, 'shown', 'shown');
    my $c = custom($r->{body}) or return diag($r->{body});
    ok($c->{json}, 'data_json still parses') or diag($c->{json_error});
    is(scalar @{ $c->{json}{cart} || [] }, 2, 'json: both lines');
    is($c->{json}{cart}[0]{name}, '', 'json: a name that is not UTF-8 is ""');
    is($c->{json}{cart}[1]{name}, 'Fine', 'json: the other name');
});

#--------------------------------------------------------------------------
# the built-in banner
#--------------------------------------------------------------------------

bsection('the built-in banner', q{
    retarget_incentive 1h WELCOME "10% off";
}, sub {
    my $now = NOW;
    my ($A, $B) = map { rvid("builtin-$_") } qw(A B);
    seed($A, cart_updated => $now - 2 * $H, last_reminder => $now - $H,
         'c:MUG' => cart_line(ms => ($now - 2 * $H) * 1000, qty => 2,
                              price => '12.50', name => 'Big Mug',
                              image => 'https://cdn.example/mug.png',
                              url => '/p/mug'),
         'c:PEN' => cart_line(ms => ($now - 3 * $H) * 1000, name => 'Pen',
                              url => '/p/pen?c=blue&x=1'));
    seed($B, 'v:HAT' => view_line(ms => ($now - 2 * $H) * 1000,
                                  name => 'Hat', image => '/i/hat.png',
                                  url => '/p/hat'));

    my $r = page($A, uri => '/page.html?from=mail&id=7');
    is($r->{decision}, 'shown', 'A: shown');
    is($r->{variant}, 'banner', 'A: variant "banner"');
    my $b = banner_of($r->{body}) // '';
    ok(length $b, 'A: the banner') or return diag($r->{body});
    like($r->{body}, qr{<p>content</p><div class="rt-banner"}, 'A: before </body>');

    like($b, qr{^<div class="rt-banner" role="region" aria-label="Your cart" data-rt-variant="banner" data-rt-at="bottom-right">},
         'A: role="region" and an aria-label, at the default place');
    (my $rest = $b) =~ s{$OVERLAY_SCRIPT}{};
    unlike($rest, qr/<script/i, 'A: no <script> but its own');
    unlike($b, qr/\son[a-z]+=/i, 'A: no event handler attribute');

    # the dismiss form: POST to the control endpoint, back to this page
    my ($form) = $b =~ m{(<form[^>]*>.*?</form>)}s;
    ok($form, 'A: a dismiss form') or return;
    like($form, qr{<form class="rt-banner-x" method="post" action="/retarget/dismiss\?to=([^"]*)" data-rt-esc>},
         'A: the form posts to /retarget/dismiss');
    my ($to) = $form =~ /action="[^"?]*\?to=([^"]*)"/;
    is(unescape_uri(unescape_html($to // '')), '/page.html?from=mail&id=7',
       'A: dismiss returns to this page');
    unlike($to // '', qr/[?&]/, 'A: the return address is one query value');
    like($form, qr{<button type="submit" aria-label="Dismiss reminder">},
         'A: a labelled submit button (keyboard: a form)');

    # every link goes through the click endpoint or to the privacy page
    my @hrefs = map { unescape_html($_) } $b =~ /\shref="([^"]*)"/g;
    ok(@hrefs >= 3, 'A: links') or diag(explain \@hrefs);
    for my $h (@hrefs) {
        ok($h =~ m{^/retarget/click\?v=banner&to=/} || $h eq '/privacy?from=banner&x=1',
           "A: link $h is same-site, through the click endpoint");
    }
    is_deeply([ grep { m{^/retarget/click} } @hrefs ],
              [ '/retarget/click?v=banner&to=/p/mug',
                '/retarget/click?v=banner&to=/p/pen%3Fc=blue%26x=1',
                '/retarget/click?v=banner&to=/p/mug' ],
              'A: item links and the main link');
    like($b, qr{<a class="rt-banner-why" href="/privacy\?from=banner&amp;x=1">},
         'A: "why am I seeing this" link to privacy_url');

    # nothing loads from elsewhere but the product images
    my @srcs = $b =~ /\ssrc="([^"]*)"/g;
    is_deeply(\@srcs, ['https://cdn.example/mug.png'],
              'A: the only src is the product image');
    unlike($b, qr/url\(|\@import|<link|<iframe|<object|<embed/i,
           'A: no CSS url(), @import, link, iframe, object');
    my @abs = grep { !m{^https://cdn\.example/mug\.png$} }
              $b =~ m{((?:https?:)?//[^\s"')]+)}g;
    is_deeply(\@abs, [], 'A: no absolute URL but the product image');
    like($b, qr{<img src="https://cdn.example/mug.png" alt="Big Mug" width="56" height="56" loading="lazy">},
         'A: the image has an alt text');
    like($b, qr{<i></i><div><a href="/retarget/click\?v=banner&amp;to=/p/pen%3Fc=blue%26x=1">Pen</a>},
         'A: a placeholder for a line without image');

    like($b, qr{<p class="rt-banner-inc"><b>10% off</b><br>Use code <strong>WELCOME</strong> at checkout\.</p>},
         'A: the incentive');
    like($b, qr{<h2>3 items left in your cart</h2>}, 'A: the count');
    like($b, qr{<p class="rt-banner-tot">Total <b>35\.00</b></p>}, 'A: the total');
    like($b, qr{<a class="rt-banner-cta" href="/retarget/click\?v=banner&amp;to=/p/mug">View your cart</a>},
         'A: the main link');

    $r = page($B);
    $b = banner_of($r->{body}) // '';
    ok(length $b, 'B: the browse banner') or return diag($r->{body});
    like($b, qr{role="region" aria-label="Recently viewed"}, 'B: its label');
    like($b, qr{<a class="rt-banner-cta" href="/retarget/click\?v=banner&amp;to=/p/hat">Take another look</a>},
         'B: the main link');
    unlike($b, qr/class="rt-banner-inc"/, 'B: no incentive in a browse reminder');
    ($rest = $b) =~ s{$OVERLAY_SCRIPT}{};
    unlike($rest, qr/<script/i, 'B: no <script> but its own');
});

bsection('link= sets the main link', q{
    retarget_campaign on link=/cart;
}, sub {
    my $now = NOW;
    my $A = rvid('link-A');
    seed($A, cart_updated => $now - 2 * $H,
         'c:MUG' => cart_line(ms => ($now - 2 * $H) * 1000, name => 'Mug',
                              url => '/p/mug'));
    my $b = banner_of(page($A)->{body}) // '';
    like($b, qr{<a class="rt-banner-cta" href="/retarget/click\?v=banner&amp;to=/cart">},
         'the main link goes to link=');
    like($b, qr{<a href="/retarget/click\?v=banner&amp;to=/p/mug">Mug</a>},
         'items still link to their page');
});

bsection('the built-in banner with the notice', '', sub {
    my $now = NOW;
    my $A = rvid('notice-A');
    seed($A, cart_updated => $now - 2 * $H,
         'c:MUG' => cart_line(ms => ($now - 2 * $H) * 1000, name => 'Mug',
                              url => '/p/mug'));
    my $B = rvid('notice-B');
    seed($B, first_seen => $now - 86400);
    # no consent cookie: the notice is shown, and the reminder with it
    my $r = page($A, consent => undef);
    is($r->{decision}, 'shown', 'the reminder is decided with a notice too');
    like($r->{body}, qr{class="rt-notice".*<div class="rt-banner".*</div></body>}s,
         'notice first, then the banner, before </body>');
    $r = page($B, consent => undef);
    is($r->{decision}, 'no_cart', 'B: nothing to remind of');
    like($r->{body}, qr{class="rt-notice"}, 'B: the notice is shown');
    unlike($r->{body}, qr{rt-banner}, 'B: no banner');

    settle();
    my $s = stats();
    is($s->{'impressions:banner'}, 1, 'impressions:banner 1');
    # counted when shown, whatever the reminder decided
    is($s->{notices}, 2, 'notices 2: both pages showed the notice');
});

done_testing();
