# Issue 10, point 2: product data from the product page itself.  The
# $retarget_page_* variables are filled from the HTML as it streams
# (schema.org JSON-LD, microdata, OpenGraph), "retarget_event product"
# without sku= takes every value from them, and retarget_page_json names
# an object the page embeds.  Checked through the product event the page
# writes to the stream (rt:events), through an access_log of the
# variables, and through the scanner's debug lines.
use strict;
use warnings;
use lib 't/lib';
use Test::Retarget;
use Test::Retarget::Redis;
use Digest::MD5 qw(md5_hex);
use IO::Compress::Gzip qw(gzip $GzipError);
use JSON::PP ();

use_redis();

my $SECRET = '0123456789abcdef0123456789abcdef';
my $V      = vid('returning');
my $LOG    = servroot() . '/logs/page.log';

my $HTTP = qq{
    retarget_secret $SECRET;
    retarget_redis 127.0.0.1:\$TEST_NGINX_REDIS_PORT;
    log_format page escape=none '\$uri|\$retarget_page_sku|\$retarget_page_name|'
                    '\$retarget_page_price|\$retarget_page_currency|'
                    '\$retarget_page_image|\$retarget_page_url|'
                    '\$retarget_page_in_stock';
};

# /p/: static product pages, the product event from the page alone;
# /small/: the same in 7-byte buffers; /up/: a fake upstream that writes
# its page in 7-byte pieces; /next/ and /var/: an embedded object;
# /plain/: no event that reads the page
my $SERVER = qq{
    retarget on;
    access_log $LOG page;

    location /p/ {
        retarget_event product;
    }

    location /small/ {
        alias \$TEST_NGINX_HTML_DIR/p/;
        output_buffers 1 7;
        sendfile off;
        retarget_event product;
    }

    location /up/ {
        proxy_pass http://127.0.0.1:\$TEST_NGINX_BACKEND_PORT;
        proxy_buffering off;
        proxy_buffer_size 256;
        retarget_event product;
    }

    location /gz/ {
        proxy_pass http://127.0.0.1:\$TEST_NGINX_BACKEND_PORT;
        gunzip on;
        retarget_event product;
    }

    location /gzraw/ {
        proxy_pass http://127.0.0.1:\$TEST_NGINX_BACKEND_PORT;
        retarget_event product;
    }

    location /cat/ {
        alias \$TEST_NGINX_HTML_DIR/p/;
        retarget_event product catalog;
    }

    location /next/ {
        alias \$TEST_NGINX_HTML_DIR/p/;
        retarget_page_json id=__NEXT_DATA__;
    }

    location /var/ {
        alias \$TEST_NGINX_HTML_DIR/p/;
        retarget_page_json var=product;
    }

    location /price/ {
        alias \$TEST_NGINX_HTML_DIR/p/;
        retarget_event view_price sku=fixed price=\$retarget_page_price;
    }

    location /plain/ {
        alias \$TEST_NGINX_HTML_DIR/p/;
    }

    location /json/ {
        alias \$TEST_NGINX_HTML_DIR/p/;
        default_type application/json;
        types { }
        retarget_event product;
    }
};

#--------------------------------------------------------------------------
# pages
#--------------------------------------------------------------------------

my $FILLER = join '', map { "<p class=\"d\">Line $_ of the description, "
                            . "with <b>markup</b> &amp; text.</p>\n" } 1 .. 40;

# WooCommerce: Yoast's @graph in the head, the product's own JSON-LD (a
# @graph, priceSpecification with a strikethrough list price) in the
# footer, near </body>
my $WOO = <<"EOF";
<!DOCTYPE html>
<html lang="en-US"><head>
<meta charset="UTF-8">
<title>Hoodie with Logo &#8211; Shop</title>
<meta property="og:title" content="Hoodie with Logo - Shop">
<meta property="og:image" content="https://shop.example/og.jpg">
<script type="application/ld+json" class="yoast-schema-graph">{"\@context":"https://schema.org","\@graph":[{"\@type":"WebPage","\@id":"https://shop.example/product/hoodie/","name":"Hoodie with Logo - Shop"},{"\@type":"BreadcrumbList","itemListElement":[]}]}</script>
</head>
<body class="product-template-default single single-product">
<div class="product"><h1 class="product_title entry-title">Hoodie with Logo</h1>
<p class="price"><del>\$45.00</del> <ins>\$42.00</ins></p>
$FILLER
</div>
<script type="text/javascript">var wc_add_to_cart_params = {"ajax_url":"\\/wp-admin\\/admin-ajax.php"};</script>
<script type="application/ld+json">{"\@context":"https:\\/\\/schema.org\\/","\@graph":[{"\@context":"https:\\/\\/schema.org\\/","\@type":"BreadcrumbList","itemListElement":[{"\@type":"ListItem","position":1,"item":{"name":"Home","\@id":"https:\\/\\/shop.example"}}]},{"\@context":"https:\\/\\/schema.org\\/","\@type":"Product","\@id":"https:\\/\\/shop.example\\/product\\/hoodie-with-logo\\/#product","name":"Hoodie with Logo","url":"https:\\/\\/shop.example\\/product\\/hoodie-with-logo\\/","description":"A hoodie.","image":"https:\\/\\/shop.example\\/wp-content\\/uploads\\/hoodie-with-logo.jpg","sku":"woo-hoodie-with-logo","offers":[{"\@type":"Offer","priceSpecification":[{"\@type":"UnitPriceSpecification","price":"45.00","priceCurrency":"USD","valueAddedTaxIncluded":false,"priceType":"https:\\/\\/schema.org\\/StrikethroughPrice"},{"\@type":"UnitPriceSpecification","price":"42.00","priceCurrency":"USD","valueAddedTaxIncluded":false,"validThrough":"2026-12-31"}],"priceValidUntil":"2026-12-31","availability":"http:\\/\\/schema.org\\/InStock","url":"https:\\/\\/shop.example\\/product\\/hoodie-with-logo\\/","seller":{"\@type":"Organization","name":"Shop"}}]}]}</script>
</body>
</html>
EOF

# a variable product: a top-level array, an AggregateOffer, an
# ImageObject, the sku from productID
my $VARIABLE = <<"EOF";
<html><head>
<script type="application/ld+json">[{"\@context":"https://schema.org","\@type":"BreadcrumbList"},{"\@context":"https://schema.org","\@type":["Product"],"name":"Classic Tee","productID":1234,"image":{"\@type":"ImageObject","url":"/img/tee.jpg","width":800},"offers":{"\@type":"AggregateOffer","lowPrice":9.5,"highPrice":"20.00","priceCurrency":"EUR","offerCount":3,"url":"/p/classic-tee","availability":"https://schema.org/OutOfStock"}}]</script>
</head><body>$FILLER</body></html>
EOF

# Magento 2 (Luma): microdata, a Brand inside the product, the price in
# data-price-amount, the sku as text
my $MAGENTO = <<"EOF";
<!doctype html>
<html lang="en"><head><title>Joust Duffle Bag</title>
<meta property="og:type" content="product">
<meta property="og:image" content="https://magento.example/media/og.jpg">
</head>
<body data-container="body">
<div class="columns"><div class="column main" itemscope itemtype="http://schema.org/Product">
<div class="product-info-main">
<div class="page-title-wrapper product"><h1 class="page-title">
<span class="base" data-ui-id="page-title-wrapper" itemprop="name">Joust
   Duffle &amp; Bag</span></h1></div>
<div class="product-brand" itemprop="brand" itemscope itemtype="http://schema.org/Brand"><span itemprop="name">Luma</span></div>
<div class="product-info-price"><div class="price-box price-final_price" data-role="priceBox" data-product-id="1">
<span class="price-container price-final_price tax weee" itemprop="offers" itemscope itemtype="http://schema.org/Offer">
<span id="product-price-1" data-price-amount="34" data-price-type="finalPrice" class="price-wrapper "><span class="price">\$34.00</span></span>
<meta itemprop="priceCurrency" content="USD" />
<link itemprop="availability" href="http://schema.org/InStock" />
</span></div>
<div class="product attribute sku"><strong class="type">SKU</strong>
<div class="value" itemprop="sku">24-MB01</div></div></div>
</div>
<div class="product media"><img itemprop="image" alt="Joust" src="https://magento.example/media/joust.jpg" /></div>
<a itemprop="url" href="/joust-duffle-bag.html">link</a>
</div>
<div class="block related" itemscope itemtype="http://schema.org/Product"><span itemprop="name">Related Bag</span><span itemprop="sku">REL-1</span></div>
</div>
</body></html>
EOF

# OpenGraph and Facebook product tags only, with entities
my $OG = <<"EOF";
<html><head>
<meta property="og:title" content="Salt &amp; Pepper &quot;Bowl&quot; &#39;L&#x27;">
<meta property="og:url" content="https://og.example/p/bowl?c=1&amp;d=2">
<meta property="og:image" content="https://og.example/bowl.png">
<meta property="og:image" content="https://og.example/second.png">
<meta property="product:price:amount" content="1.299,50">
<meta property="product:price:currency" content="EUR">
<meta property="product:availability" content="out of stock">
<meta property="product:retailer_item_id" content="BOWL-9">
</head><body>$FILLER</body></html>
EOF

# Next.js: the page state in __NEXT_DATA__; and a classic inline object
my $NEXT = <<"EOF";
<html><body><div id="__next">$FILLER</div>
<script id="__NEXT_DATA__" type="application/json">{"props":{"pageProps":{"product":{"sku":"NX-1","name":"Next {Chair}","price":"99.00"}}},"page":"/p/[slug]"}</script>
<script>window.product = 1;</script>
<script>
  var cart = {"n": 0};
  window.dataLayer = window.dataLayer || [];
  var product = {"sku":"VAR-7","name":"It's \\"}\\" a {brace}","price":12.5,"tags":["a}","{b"]};
  var other = {"x": 1};
</script>
</body></html>
EOF

my $NONE = "<html><head><title>About us</title></head><body>$FILLER</body></html>\n";

# JSON-LD in a comment, a script's string and a title are not the page's
my $TRAPS = <<"EOF";
<html><head><title><meta property="og:title" content="title trap"></title>
<!-- <script type="application/ld+json">{"\@type":"Product","sku":"COMMENT"}</script> -->
<script>var s = '<meta property="og:title" content="script trap">';</script>
<meta property="og:title" content="Real Name">
<meta property="product:retailer_item_id" content="REAL-1">
<meta property="og:image" content="//cdn.example/t.png">
</head><body></body></html>
EOF

sub big_page {
    # 2 MB: a JSON-LD script over the 64 KB bound (skipped), then the real
    # one near the end
    my $huge = '{"@type":"Product","sku":"HUGE","name":"'
             . ('x' x 100_000) . '"}';
    my $body = join '', map { "<div class=\"row\">row $_ "
                              . ('lorem ipsum ' x 8) . "</div>\n" } 1 .. 17_000;
    return "<html><head><script type=\"application/ld+json\">$huge</script>"
         . "</head><body>$body<script type=\"application/ld+json\">"
         . '{"@type":"Product","sku":"BIG-1","name":"Big Page",'
         . '"offers":{"price":"5.00","priceCurrency":"GBP"}}'
         . "</script></body></html>\n";
}

my %PAGES = (
    'p/woo.html' => $WOO, 'p/variable.html' => $VARIABLE,
    'p/magento.html' => $MAGENTO, 'p/og.html' => $OG,
    'p/next.html' => $NEXT, 'p/none.html' => $NONE,
    'p/traps.html' => $TRAPS, 'index.html' => "<html><body>x</body></html>",
);

#--------------------------------------------------------------------------
# helpers
#--------------------------------------------------------------------------

sub get {
    my ($uri, %o) = @_;
    my @h = ('Accept: text/html', 'Cookie: rt_vid=' . signed_cookie($V, $SECRET)
             . '; ' . consent_cookie('ack', $SECRET));
    my $r = http_req(uri => $uri, headers => \@h);
    is($r->{status}, 200, "GET $uri: 200") or diag($r->{error} // $r->{raw});
    return $r;
}

sub events {
    my $l = redis_cmd('XRANGE', 'rt:events', '-', '+');
    return map { my %f = @{ $_->[1] };
                 eval { JSON::PP->new->utf8->decode($f{e}) } || {} }
           ref $l ? @$l : ();
}

sub stats {
    my $l = redis_cmd('HGETALL', 'rt:stats:' . today());
    return { ref $l ? @$l : () };
}

sub product_events { grep { ($_->{type} // '') eq 'product' } events() }

# the access log line of a uri, split into the variables
sub logged {
    my ($uri) = @_;
    my $found;
    eventually(sub {
        open my $fh, '<', $LOG or return 0;
        for my $line (<$fh>) {
            chomp $line;
            my @f = split /\|/, $line, -1;
            $found = [ @f[1 .. 7] ] if $f[0] eq $uri;
        }
        return $found;
    }, 3);
    return $found || [];
}

sub section_p {
    my ($name, $code, %o) = @_;
    section($name, { http_config => $HTTP, config => $SERVER, %o },
            \%PAGES, $code);
}

#--------------------------------------------------------------------------
# JSON-LD
#--------------------------------------------------------------------------

section_p('WooCommerce: JSON-LD @graph in the footer, priceSpecification',
sub {
    my $r = get('/p/woo.html');
    is($r->{body}, $WOO, 'the page is delivered unchanged');
    settle();
    my @ev = product_events();
    is(scalar @ev, 1, 'one product event');
    my $e = $ev[0] || {};
    is($e->{sku}, 'woo-hoodie-with-logo', 'sku');
    is($e->{name}, 'Hoodie with Logo', 'name: from JSON-LD, not og:title');
    is($e->{price}, '42.00', 'price: the one paid, not the strikethrough');
    is($e->{image}, 'https://shop.example/wp-content/uploads/hoodie-with-logo.jpg',
       'image');
    is($e->{url}, 'https://shop.example/product/hoodie-with-logo/', 'url');
    is_deeply(logged('/p/woo.html'),
              [ 'woo-hoodie-with-logo', 'Hoodie with Logo', '42.00', 'USD',
                'https://shop.example/wp-content/uploads/hoodie-with-logo.jpg',
                'https://shop.example/product/hoodie-with-logo/', '1' ],
              'variables: currency USD, in stock');
    is(stats()->{product_views}, 1, 'product_views 1');
    is(redis_cmd('EXISTS', 'rt:p:woo-hoodie-with-logo'), 0,
       'no product hash without "catalog"');
});

section_p('JSON-LD array, AggregateOffer lowPrice, ImageObject, productID',
sub {
    get('/p/variable.html');
    is_deeply(logged('/p/variable.html'),
              [ '1234', 'Classic Tee', '9.5', 'EUR', '/img/tee.jpg',
                '/p/classic-tee', '0' ],
              'sku from productID, lowPrice, ImageObject url, the url of '
              . 'the offer (PrestaShop), out of stock');
    settle();
    my ($e) = product_events();
    is($e->{sku} // '', '1234', 'event: sku');
    is($e->{price} // '', '9.5', 'event: price');
    is($e->{image} // '', '/img/tee.jpg', 'event: image');
});

section_p('a page in 7-byte buffers gives the same values', sub {
    for my $page (qw(woo magento og)) {
        get("/p/$page.html");
        my $r = get("/small/$page.html");
        is(md5_hex($r->{body}), md5_hex($PAGES{"p/$page.html"}),
           "/small/$page.html: the page unchanged");
        is_deeply(logged("/small/$page.html"), logged("/p/$page.html"),
                  "/small/$page.html: the same values as in one buffer");
    }
    like(error_log_since_mark(), qr/retarget page: sku "woo-hoodie-with-logo"/,
         'the scan ran');
});

section_p('an upstream that writes its page 7 bytes at a time', sub {
    my $head = "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=UTF-8\r\n"
             . "Connection: close\r\n\r\n";
    my @chunks = ($head, map { substr($WOO, $_ * 7, 7) }
                         0 .. int((length($WOO) - 1) / 7));
    Test::Retarget::start_backend(\@chunks, 0.001);
    my $r = get('/up/woo.html');
    is(md5_hex($r->{body}), md5_hex($WOO), 'the page unchanged');
    settle();
    my ($e) = product_events();
    is($e->{sku} // '', 'woo-hoodie-with-logo', 'sku');
    is($e->{price} // '', '42.00', 'price');
    is_deeply(logged('/up/woo.html')->[3], 'USD', 'currency');
    Test::Retarget::stop_backend();
});

section_p('a gzip\'d upstream: read after gunzip, not when left encoded',
sub {
    gzip(\$WOO => \my $gz) or die $GzipError;
    my $head = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
             . "Content-Encoding: gzip\r\nContent-Length: " . length($gz)
             . "\r\nConnection: close\r\n\r\n";
    Test::Retarget::start_backend([ $head . $gz ], 0);
    my $r = get('/gz/woo.html');
    is(md5_hex($r->{body}), md5_hex($WOO), 'gunzip on: the page, decoded');
    is(logged('/gz/woo.html')->[0], 'woo-hoodie-with-logo',
       'gunzip on: the product read from the decoded page');
    $r = get('/gzraw/woo.html');
    is(md5_hex($r->{body}), md5_hex($gz), 'without gunzip: the gzip bytes');
    is(logged('/gzraw/woo.html')->[0], '',
       'without gunzip: an encoded page is not read');
    Test::Retarget::stop_backend();
});

#--------------------------------------------------------------------------
# microdata, OpenGraph, entities
#--------------------------------------------------------------------------

section_p('microdata (Magento Luma): the first Product, its Offer', sub {
    get('/p/magento.html');
    is_deeply(logged('/p/magento.html'),
              [ '24-MB01', 'Joust Duffle & Bag', '34', 'USD',
                'https://magento.example/media/joust.jpg', '/joust-duffle-bag.html',
                '1' ],
              'name as text (entities, white space), not the Brand\'s; '
              . 'data-price-amount; link href; img src; not the related one');
    settle();
    my ($e) = product_events();
    is($e->{sku} // '', '24-MB01', 'event: sku');
    is($e->{name} // '', 'Joust Duffle & Bag', 'event: name');
    is($e->{price} // '', '34', 'event: price');
});

section_p('OpenGraph only, HTML entities, a European price', sub {
    get('/p/og.html');
    is_deeply(logged('/p/og.html'),
              [ 'BOWL-9', q{Salt & Pepper "Bowl" 'L'}, '1299.50', 'EUR',
                'https://og.example/bowl.png',
                'https://og.example/p/bowl?c=1&d=2', '0' ],
              'og:* and product:* tags, the first og:image');
    settle();
    my ($e) = product_events();
    is($e->{sku} // '', 'BOWL-9', 'event: sku from product:retailer_item_id');
    is($e->{name} // '', q{Salt & Pepper "Bowl" 'L'}, 'event: name decoded');
});

section_p('markup in a title, a comment or a script is not the page\'s', sub {
    get('/p/traps.html');
    is_deeply([ @{ logged('/p/traps.html') }[0, 1, 4] ],
              [ 'REAL-1', 'Real Name', '//cdn.example/t.png' ],
              'the real og tags only; a protocol-relative image as given');
});

#--------------------------------------------------------------------------
# no product data, other locations and types
#--------------------------------------------------------------------------

section_p('a page without product data: no product event, no rejection', sub {
    get('/p/none.html');
    settle();
    is(scalar(product_events()), 0, 'no product event');
    # a category page in a product location is not an error to count
    ok(!stats()->{rejected}, 'not counted as rejected');
    ok(!stats()->{'rejected:no_sku'}, 'no no_sku');
    like(error_log_since_mark(),
         qr/event "product": no product in the page, not logged/,
         'the debug log says why');
    unlike(error_log_since_mark(), qr/\[notice\].*rejected/,
           'no notice');
    is_deeply(logged('/p/none.html'), [ ('') x 7 ], 'every variable empty');
});

section_p('not scanned: no event reads the page, or not HTML', sub {
    get('/plain/woo.html');
    is_deeply(logged('/plain/woo.html'), [ ('') x 7 ],
              'a location without page events: empty variables');
    get('/json/woo.html');
    is_deeply(logged('/json/woo.html'), [ ('') x 7 ],
              'application/json: not scanned');
    get('/price/woo.html');
    is(logged('/price/woo.html')->[2], '42.00',
       'an event naming $retarget_page_price: scanned');
    settle();
    my ($e) = grep { $_->{type} eq 'view_price' } events();
    is($e->{price} // '', '42.00', 'the custom event got the page price');
});

section_p('retarget_event product catalog: the page is the shop\'s word', sub {
    get('/cat/woo.html');
    settle();
    my $p = hash('rt:p:woo-hoodie-with-logo');
    is($p->{name}, 'Hoodie with Logo', 'product hash: name from the page');
    is($p->{price}, '42.00', 'product hash: price from the page');
    # issue 11: the catalogue has the page's currency and availability too
    is($p->{currency}, 'USD', 'product hash: currency from the page');
    is($p->{in_stock}, '1', 'product hash: in_stock from the page');
});

#--------------------------------------------------------------------------
# retarget_page_json
#--------------------------------------------------------------------------

section_p('retarget_page_json id= and var=', sub {
    my ($next) = $NEXT =~ m{id="__NEXT_DATA__" type="application/json">(.*?)</script>}s;
    my ($var) = $NEXT =~ m{var product = (\{.*?\});\n}s;
    get('/next/next.html');
    my ($len, $text) = error_log_since_mark()
                       =~ /embedded object of (\d+) bytes: "(.*)"/;
    is($len, length $next, 'id=__NEXT_DATA__: the length of the script\'s text');
    is($text, substr($next, 0, 64), 'id=__NEXT_DATA__: its text');
    mark_error_log();
    get('/var/next.html');
    ($len, $text) = error_log_since_mark()
                    =~ /embedded object of (\d+) bytes: "(.*)"/;
    is($len, length $var, 'var=product: the object literal, strings respected');
    is($text, substr($var, 0, 64),
       'var=product: not window.product = 1, not another var');
});

#--------------------------------------------------------------------------
# bounds
#--------------------------------------------------------------------------

section_p('a 2 MB page: the over-long script skipped, the page unchanged',
sub {
    my $big = big_page();
    write_file('p/big.html', $big);
    my $r = get('/p/big.html');
    is(length $r->{body}, length $big, 'every byte delivered');
    is(md5_hex($r->{body}), md5_hex($big), 'the page unchanged (md5)');
    is_deeply([ @{ logged('/p/big.html') }[0 .. 3] ],
              [ 'BIG-1', 'Big Page', '5.00', 'GBP' ],
              'the script over 64 KB skipped, the later one read');
});

#--------------------------------------------------------------------------
# configuration
#--------------------------------------------------------------------------

subtest 'retarget_page_json: invalid values fail nginx -t' => sub {
    for my $bad ('foo', 'id=', 'var=1x', 'var=a-b', 'id=a"b') {
        Test::Retarget::write_nginx_conf({
            http_config => Test::Retarget::expand_env($HTTP),
            config => "location / { retarget_page_json $bad; }" });
        my ($st, $out) = Test::Retarget::nginx_config_test();
        ok($st != 0, "retarget_page_json $bad: refused");
        like($out, qr/invalid parameter .* in "retarget_page_json"/,
             "retarget_page_json $bad: the message")
            or diag($out);
    }
    Test::Retarget::write_nginx_conf({
        http_config => Test::Retarget::expand_env($HTTP),
        config => "retarget_page_json var=product;\n"
                . "location / { retarget_page_json id=x; }\n"
                . "location /b/ { retarget_event product; }" });
    my ($st, $out) = Test::Retarget::nginx_config_test();
    is($st, 0, 'server and location levels, product without sku=: valid')
        or diag($out);
};

done_testing();
