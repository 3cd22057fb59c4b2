# util/retarget-feed: Google Merchant (TSV, RSS, Atom) and Meta (CSV)
# feeds into the catalogue, rt:p:SKU and rt:out_of_stock, against a real
# redis-server; a hostile feed (BOM, CRLF, quotes, huge fields, bad
# prices, missing ids, javascript: links, non-UTF-8 bytes) loads what is
# good and reports the rest by row, never a traceback; the exit status
# says whether anything was loaded; --dry-run writes nothing;
# --delete-missing deletes only what the feed no longer lists, and only
# after the whole feed was read.
#
# Nothing here needs nginx: the catalogue's readers (the reminders) are
# tested with the module (the catalogue helper's tests).

BEGIN { $ENV{TEST_RETARGET_NO_MODULE} = 1 }

use strict;
use warnings;
use lib 't/lib';
use Encode qw(encode_utf8 decode_utf8);
use File::Path qw(make_path);
use IO::Compress::Gzip qw(gzip $GzipError);
use IO::Socket::INET;
use JSON::PP qw(decode_json);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Test::Retarget;
use Test::Retarget::Redis;

my $FEED = 'util/retarget-feed';
my $DATA = 't/data/feeds';
my $port = use_redis();
my $tmp = servroot() . '/feed';
make_path($tmp);

# runs the command: (exit status, stdout, stderr)
sub feed {
    my (@args) = @_;
    my %env = ref $args[0] eq 'HASH' ? %{ shift @args } : ();
    my $stdin = $env{stdin} // '/dev/null';
    delete $env{stdin};
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        @ENV{ keys %env } = values %env;
        open STDIN, '<', $stdin or die "$stdin: $!";
        open STDOUT, '>', "$tmp/out" or die;
        open STDERR, '>', "$tmp/err" or die;
        exec($FEED, '--redis', "127.0.0.1:$port", @args) or POSIX::_exit(127);
    }
    waitpid($pid, 0);
    my $rc = $? >> 8;
    return ($rc, slurp("$tmp/out"), slurp("$tmp/err"));
}

sub slurp {
    open my $fh, '<:raw', $_[0] or return '';
    local $/;
    return scalar <$fh>;
}

sub spew {
    my ($name, $bytes) = @_;
    open my $fh, '>:raw', "$tmp/$name" or die "$tmp/$name: $!";
    print {$fh} $bytes;
    close $fh;
    return "$tmp/$name";
}

sub members { [ sort @{ redis_cmd('SMEMBERS', $_[0] // 'rt:out_of_stock') } ] }

sub product_keys {
    my ($pattern) = @_;
    my ($cursor, @k) = (0);
    do {
        my $r = redis_cmd('SCAN', $cursor, 'MATCH', $pattern // 'rt:p:*',
                          'COUNT', 1000);
        ($cursor, my $keys) = @$r;
        push @k, @$keys;
    } while ($cursor ne '0');
    my %u = map { $_ => 1 } @k;
    return [ sort keys %u ];
}

sub fresh { redis_cmd('FLUSHALL') }

# INFO commandstats: {command => calls}
sub calls {
    my $info = redis_cmd('INFO', 'commandstats') // '';
    return { map { /^cmdstat_([\w|]+):calls=(\d+)/ ? ($1 => $2) : () }
             split /\r?\n/, $info };
}

# the write commands Redis ran meanwhile, by INFO commandstats
sub writes_during {
    my ($code) = @_;
    my $c0 = calls();
    my @r = $code->();
    my $c1 = calls();
    my %d = map { $_ => $c1->{$_} - ($c0->{$_} // 0) }
            grep { /^(?:hset|hdel|sadd|srem|expire|persist|del|set)$/ }
            keys %$c1;
    delete @d{ grep { !$d{$_} } keys %d };
    return (\%d, @r);
}

# the commands Redis ran while $code ran (MONITOR), as "CMD arg ..."
sub monitored {
    my ($code) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Timeout => 5) or die "monitor: $!";
    print {$s} "MONITOR\r\n";
    my $ok = <$s>;
    die "MONITOR: $ok" unless ($ok // '') =~ /^\+OK/;
    my @r = $code->();
    redis_cmd('ECHO', 'monitored-end');
    my @cmds;
    local $SIG{ALRM} = sub { die "MONITOR: no end in 10 s\n" };
    alarm 10;
    while (my $l = <$s>) {
        # +1700000000.123456 [0 127.0.0.1:5678] "HSET" "rt:p:X" "price" "1"
        my ($rest) = $l =~ /^\+\S+ \[[^\]]*\] (.*?)\r?$/ or next;
        my @a = $rest =~ /"((?:[^"\\]|\\.)*)"/g;
        last if uc $a[0] eq 'ECHO' && ($a[1] // '') eq 'monitored-end';
        push @cmds, join ' ', uc(shift @a), @a;
    }
    alarm 0;
    close $s;
    return ([ grep { /^(?:HSET|HDEL|SADD|SREM|EXPIRE|PERSIST|DEL|SET) /
                   } @cmds ], @r);
}

sub no_traceback {
    my ($err, $what) = @_;
    unlike($err, qr/Traceback|File "/, "$what: no traceback");
}

#--------------------------------------------------------------------------

subtest 'the command: executable, --help, bad usage' => sub {
    ok(-x $FEED, "$FEED is executable");
    my ($rc, $out) = feed('--help');
    is($rc, 0, '--help exits 0');
    like($out, qr/usage: retarget-feed/, '--help prints the usage');
    like($out, qr/--sku-column.*--delete-missing/s, 'and the options');
    ($rc, undef, my $err) = feed('--no-such-option', "$DATA/google.tsv");
    is($rc, 2, 'an unknown option: exit 2');
    ($rc, undef, $err) = feed('--ttl', 'soon', "$DATA/google.tsv");
    is($rc, 2, 'a bad --ttl: exit 2');
    ($rc, undef, $err) = feed("$tmp/no-such-file.tsv");
    is($rc, 1, 'a missing file: exit 1');
    like($err, qr/No such file/, 'and says so');
    no_traceback($err, 'missing file');
};

subtest 'Google Merchant TSV' => sub {
    fresh();
    # the state before: a product sold out and back, a stale name with the
    # retention TTL a catalog event gives, a field the feed does not have
    redis_cmd('SADD', 'rt:out_of_stock', 'MUG-1', 'OTHER');
    redis_cmd('HSET', 'rt:p:MUG-1', 'name', 'Old Mug', 'extra', 'kept');
    redis_cmd('EXPIRE', 'rt:p:MUG-1', 1000);

    my ($rc, $out, $err) = feed("$DATA/google.tsv");
    is($rc, 0, 'exit 0');
    is($out, '', 'nothing on stdout');
    like($err, qr/google\.tsv: delimited \(tab\), 6 rows: loaded 6 \(2 out of stock\), unchanged 0, changed 6, skipped 0, values not written 0, notes 0/,
         'the summary counts 6 products, 2 out of stock');
    is_deeply(hash('rt:p:MUG-1'), { name => 'Harbor Mug', price => '12.00',
        currency => 'USD', url => 'https://shop.example/p/mug',
        image => 'https://cdn.shop.example/img/mug.jpg', in_stock => '1',
        extra => 'kept' }, 'MUG-1: every field; a field the feed lacks kept');
    is(redis_cmd('TTL', 'rt:p:MUG-1'), -1,
       'no --ttl: the product is made persistent');
    is(hash('rt:p:TEE-S')->{price}, '19.50',
       'a sale price in its effective dates wins');
    is(hash('rt:p:TEE-M')->{price}, '24.00',
       'a sale price after its end date is not used');
    is(hash('rt:p:LAMP-1')->{price}, '1099.00',
       '"1,099.00 USD": the sale price, thousands separator gone');
    is_deeply([ @{ hash('rt:p:NOTE-1') }{qw(price url image in_stock)} ],
              [ '9.5', '/p/notebook',
                'https://cdn.shop.example/img/notebook.jpg', '1' ],
              'NOTE-1: "9.5" as written, a same-site url, //host made '
              . 'https, preorder in stock');
    is_deeply([ @{ hash('rt:p:POSTER-1') }{qw(price currency in_stock)} ],
              [ '18.00', 'EUR', '0' ],
              'POSTER-1: "18.0000 EUR" written as cents, "out of stock"');
    is_deeply(members(), [ 'OTHER', 'POSTER-1', 'TEE-S' ],
              'out_of_stock: the sold-out products added, MUG-1 removed, '
              . 'a sku not in the feed left alone');
    is(scalar @{ product_keys() }, 6, 'six product hashes');

    ($rc, undef, $err) = feed('--ttl', '2d', '--prefix', 'shop:',
                              "$DATA/google.tsv");
    is($rc, 0, '--ttl 2d --prefix shop:');
    my $ttl = redis_cmd('TTL', 'shop:p:MUG-1');
    ok($ttl > 172700 && $ttl <= 172800, "TTL of 2 days ($ttl)");
    is_deeply(members('shop:out_of_stock'), [ 'POSTER-1', 'TEE-S' ],
              'the prefix names the set too');

    ($rc, undef, $err) = feed('--sku-column', 'item_group_id', '--prefix',
                              'grp:', "$DATA/google.tsv");
    is($rc, 0, '--sku-column item_group_id');
    like($err, qr/loaded 5 \(1 out of stock\).*variants merged 1/,
         'two rows of group TEE are one product');
    is_deeply([ @{ hash('grp:p:TEE') }{qw(name in_stock)} ],
              [ 'Lighthouse T-shirt (S)', '1' ],
              'TEE: the first row\'s values, in stock as one variant is');
    is_deeply(members('grp:out_of_stock'), [ 'POSTER' ],
              'and not in the out-of-stock set');

    # a product without variants has no item_group_id: its id, then
    my $f = spew('groups.tsv', "id\ttitle\titem_group_id\tavailability\n"
                 . "V-S\tVest S\tVEST\tout_of_stock\n"
                 . "SOLO\tSolo Cap\t\tin_stock\n"
                 . "V-M\tVest M\tVEST\tout_of_stock\n");
    ($rc, undef, $err) = feed('--sku-column', 'item_group_id,id',
                              '--prefix', 'g2:', $f);
    like($err, qr/3 rows: loaded 2 \(1 out of stock\), unchanged 0, changed 2, skipped 0.*variants merged 1/,
         '--sku-column item_group_id,id: the group, and the id where none');
    is_deeply([ hash('g2:p:VEST')->{in_stock}, hash('g2:p:SOLO')->{name} ],
              [ '0', 'Solo Cap' ], 'VEST out of stock (both are), SOLO');
    is_deeply(members('g2:out_of_stock'), [ 'VEST' ], 'the set');

    ($rc, undef, $err) = feed('--sku-column', 'mpn', '--prefix', 'mpn:',
                              "$DATA/google.tsv");
    is(hash('mpn:p:HM-350')->{name}, 'Harbor Mug', '--sku-column mpn');
    ($rc, undef, $err) = feed('--sku-column', 'gtin', "$DATA/google.tsv");
    is($rc, 1, 'a --sku-column the header lacks: exit 1');
    like($err, qr/no "gtin" column/, 'and says so');
};

subtest 'Google Merchant RSS and Atom XML' => sub {
    fresh();
    redis_cmd('HSET', 'rt:p:VASE-3', 'url', 'https://shop.example/p/vase');
    my ($rc, $out, $err) = feed("$DATA/google.xml");
    is($rc, 0, 'RSS: exit 0');
    like($err, qr/XML \(RSS\), 4 items: loaded 3 \(1 out of stock\), unchanged 0, changed 3, skipped 1, values not written 1/,
         'RSS: 3 loaded, 1 skipped, 1 value not written');
    like($err, qr/^item 4 \(line 36\): skipped: no id$/m,
         'the item without g:id, by number and line');
    like($err, qr/^item 3 \(line 29\): url not written: .*"javascript:alert\(1\)"$/m,
         'the javascript: link');
    is_deeply(hash('rt:p:MUG-1'), { name => 'Harbor Mug <Blue>',
        price => '12.00', currency => 'USD',
        url => 'https://shop.example/p/mug',
        image => 'https://cdn.shop.example/img/mug.jpg', in_stock => '1' },
        'MUG-1: CDATA title, the item\'s g:price, not g:shipping\'s');
    is_deeply([ @{ hash('rt:p:BOWL-2') }{qw(name price currency in_stock)} ],
              [ 'Salt & Pepper Bowl', '25.00', 'EUR', '0' ],
              'BOWL-2: g:title over title, entity decoded, sale price');
    is(hash('rt:p:VASE-3')->{url}, 'https://shop.example/p/vase',
       'VASE-3: a refused link leaves the stored url as it was');
    is_deeply(members(), [ 'BOWL-2' ], 'out_of_stock');

    ($rc, $out, $err) = feed("$DATA/google-atom.xml");
    is($rc, 0, 'Atom: exit 0');
    like($err, qr/XML \(Atom\), 2 items: loaded 1 .*skipped 1/,
         'Atom: 1 loaded, the entry without g:id skipped (atom:id is not '
         . 'a sku)');
    is_deeply([ @{ hash('rt:p:ATOM-1') }{qw(name url price currency)} ],
              [ 'Harbor Blanket', 'https://shop.example/p/blanket',
                '59.90', 'SEK' ], 'ATOM-1: <link href>, SEK');
};

subtest 'Meta catalogue CSV' => sub {
    fresh();
    my ($rc, $out, $err) = feed("$DATA/meta.csv");
    is($rc, 0, 'exit 0');
    like($err, qr/delimited \(comma\), 5 rows: loaded 5 \(2 out of stock\), unchanged 0, changed 5, skipped 0, values not written 0, notes 1/,
         'the summary');
    like($err, qr/^row 6: sale_price: not used: above the price$/m,
         'a sale price above the price is reported, not used');
    is(hash('rt:p:M-100')->{name}, 'Blue Mug, large', 'a quoted comma');
    is_deeply([ @{ hash('rt:p:M-101') }{qw(price in_stock)} ],
              [ '79.00', '0' ], 'M-101: sale price, "out of stock"');
    is(hash('rt:p:M-102')->{in_stock}, '1', '"available for order": 1');
    is(hash('rt:p:M-103')->{in_stock}, '0', '"discontinued": 0');
    is_deeply([ @{ hash('rt:p:M-104') }{qw(name price currency)} ],
              [ encode_utf8("Caf\x{e9} Cr\x{e8}me Set"), '32.50', 'EUR' ],
              'M-104: UTF-8 name, "EUR 32.50"');
    is_deeply(members(), [ 'M-101', 'M-103' ], 'out_of_stock');

    # a feed as Excel's "Unicode text": UTF-16LE with a BOM, CRLF
    my $tsv = decode_utf8(slurp("$DATA/google.tsv")) =~ s/\n/\r\n/gr;
    $tsv =~ s/Harbor Mug/Caf\x{e9} Mug/;
    my $f = spew('google-utf16.txt',
                 "\xff\xfe" . Encode::encode('UTF-16LE', $tsv));
    fresh();
    ($rc, $out, $err) = feed($f);
    is($rc, 0, 'UTF-16 TSV: exit 0');
    like($err, qr/delimited \(tab\), 6 rows: loaded 6/, 'UTF-16 TSV: 6');
    is(hash('rt:p:MUG-1')->{name}, encode_utf8("Caf\x{e9} Mug"),
       'UTF-16 TSV: the name');
};

subtest 'a hostile feed' => sub {
    fresh();
    redis_cmd('HSET', 'rt:p:H-LATIN', 'name', 'Cafe creme');
    my ($rc, $out, $err) = feed("$DATA/hostile.csv");
    is($rc, 0, 'exit 0: something was loaded');
    no_traceback($err, 'hostile');
    like($err, qr/hostile\.csv: delimited \(comma\), 24 rows: loaded 17 \(1 out of stock\), unchanged 0, changed 17, skipped 7, values not written 12, notes 4/,
         'the summary counts');
    for my $line (
        'row 3: skipped: no id',
        'row 4: skipped: sku "H BAD": a space',
        'row 6: skipped: sku "H-\\xe9": not UTF-8',
        'row 7: url not written: not an http(s) URL or a path on the site "javascript:alert(1)"',
        'row 7: image not written: not an http(s) URL or a path on the site "data:image/png;base64;AAAA"',
        'row 8: price not written: "abc USD" not a price',
        'row 9: price not written: "12.345678 USD" more than 4 decimals',
        'row 10: price not written: "-5.00 USD" not a price',
        'row 11: price not written: "15,00 EUR" not a price (a decimal comma?)',
        'row 12: price not written: "123456789.00 USD" over 99,999,999.99',
        'row 13: name not written: not UTF-8 "Caf\\xe9 cr\\xe8me"',
        'row 14: name: control characters removed',
        'row 15: name: cut to 200 bytes (was 600)',
        'row 16: skipped: id "H-OK" is also on row 2',
        'row 17: skipped: 9 fields, the header has 7',
        'row 19: sale_price: not used: "cheap" not a price',
        'row 23: url not written: a space "https://shop.example/p/a b"',
        'row 24: skipped: nothing usable to write',
        'row 25: url not written: not an http(s) URL or a path on the site "/\\\\evil.example/x"',
        'row 25: image not written: not an http(s) URL or a path on the site "///x"',
        'row 26: availability: "maybe" is not known: in stock')
    {
        like($err, qr/^\Q$line\E$/m, $line);
    }
    like($err, qr/^row 5: skipped: sku "H-X+\.\.\.": longer than 64 bytes \(70\)$/m,
         'row 5: the 70-byte sku');
    like($err, qr/^row 15: url not written: longer than 1024 bytes \(1123\)/m,
         'row 15: the 1123-byte url');

    is(scalar @{ product_keys() }, 17, '17 product hashes');
    is_deeply(hash('rt:p:H-OK'), { name => 'Quoted "Deluxe" Bowl',
        price => '10.00', currency => 'USD', in_stock => '1',
        url => 'https://shop.example/p/ok',
        image => 'https://cdn.shop.example/ok.jpg' },
        'H-OK (after the BOM): quotes, and the first of two rows');
    is_deeply(hash('rt:p:H-JS'), { name => 'Script links', price => '5.00',
        currency => 'USD', in_stock => '1' },
        'H-JS: no javascript: url, no data: image');
    ok(!exists hash('rt:p:H-PRICE1')->{price}, 'H-PRICE1: no price');
    is(hash('rt:p:H-LATIN')->{name}, 'Cafe creme',
       'H-LATIN: a name that is not UTF-8 leaves the stored one');
    is(hash('rt:p:H-CTRL')->{name}, 'Bell and tab evil',
       'H-CTRL: BEL and U+202E removed, the tab a space');
    my $long = hash('rt:p:H-LONG')->{name};
    ok(length($long) <= 200 && $long =~ /\xe2\x80\xa6\z/
       && utf8::decode(my $copy = $long),
       'H-LONG: cut to ' . length($long) . ' bytes, whole characters, "..."');
    ok(!exists hash('rt:p:H-LONG')->{url}, 'H-LONG: no 1123-byte url');
    is_deeply([ @{ hash('rt:p:H-ROUND') }{qw(price image)} ],
              [ '15.01', 'https://cdn.shop.example/round.jpg' ],
              'H-ROUND: 15.005 half up to 15.01; //host made https');
    is(hash('rt:p:H-CURR')->{currency}, 'USD', '"usd" is USD');
    is(hash('rt:p:H-NL')->{name}, 'Two lines', 'a quoted CRLF is a space');
    is_deeply(members(), [ 'H-CTRL' ], 'out_of_stock: H-CTRL only');
    is(redis_cmd('EXISTS', 'rt:p:H BAD', 'rt:p:H-NOTHING', 'rt:p:H-SHIFT',
                 "rt:p:H-\xe9"), 0, 'no hash of a skipped row');

    # a feed of nothing usable; only a header; a shell of XML
    fresh();
    my $f = spew('bad.tsv', "id\ttitle\tprice\n\tNo id\t1.00 USD\n"
                            . "a b\tSpace\t2.00 USD\n");
    ($rc, $out, $err) = feed($f);
    is($rc, 1, 'nothing loadable: exit 1');
    like($err, qr/2 rows: loaded 0 .*skipped 2/, 'and the counts say why');
    $f = spew('header.csv', "id,title,price\r\n");
    ($rc, $out, $err) = feed($f);
    is($rc, 1, 'a header only: exit 1');
    $f = spew('noheader.csv', "hello,world\n1,2\n");
    ($rc, $out, $err) = feed($f);
    is($rc, 1, 'no feed header: exit 1');
    like($err, qr/no header row of feed attributes/, 'and says so');
    $f = spew('empty.xml', "<?xml version=\"1.0\"?><rss><channel/></rss>");
    ($rc, $out, $err) = feed($f);
    is($rc, 1, 'XML without items: exit 1');
    like($err, qr/no <item> or <entry>/, 'and says so');
    is(redis_cmd('DBSIZE'), 0, 'nothing written by any of them');

    # entities: refused before anything expands
    $f = spew('bomb.xml', qq{<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n<rss><channel><item><id>X</id><title>&b;</title></item></channel></rss>\n});
    ($rc, $out, $err) = feed($f);
    is($rc, 1, 'a DOCTYPE with entities: exit 1');
    like($err, qr/bomb\.xml: XML line 2: an entity declaration in the DOCTYPE/,
         'and says so');
    no_traceback($err, 'entities');
    $f = spew('doctype.xml', qq{<?xml version="1.0"?>\n<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "http://my.netscape.com/publish/formats/rss-0.91.dtd">\n<rss><channel><item><id>D1</id><title>Old RSS</title></item></channel></rss>\n});
    ($rc, $out, $err) = feed($f);
    is($rc, 0, 'a DOCTYPE without declarations is fine (nothing fetched)');
    is(redis_cmd('HGET', 'rt:p:D1', 'name'), 'Old RSS', 'and read');

    $f = spew('enc.xml', qq{<?xml version="1.0" encoding="x-no-such"?>\n<rss><channel><item><id>E1</id></item></channel></rss>\n});
    ($rc, $out, $err) = feed($f);
    is($rc, 1, 'an encoding nobody knows: exit 1');
    like($err, qr/enc\.xml: XML line 1: unknown encoding: x-no-such/,
         'and says so');

    # bytes that are not UTF-8 in XML drop the value, not the parse
    $f = spew('latin.xml', qq{<?xml version="1.0" encoding="UTF-8"?>\n<rss xmlns:g="http://base.google.com/ns/1.0"><channel><item><g:id>L1</g:id><g:title>Caf\xe9</g:title><g:price>1.00 EUR</g:price></item><item><g:id>L2</g:id><g:title>Tea</g:title></item></channel></rss>\n});
    ($rc, $out, $err) = feed($f);
    is($rc, 0, 'XML with a Latin-1 byte: exit 0');
    like($err, qr/^item 1 \(line 2\): name not written: not UTF-8/m,
         'the name is refused');
    is_deeply([ redis_cmd('HGET', 'rt:p:L1', 'price'),
                redis_cmd('HGET', 'rt:p:L2', 'name') ], [ '1.00', 'Tea' ],
              'the rest of the item and the next one are loaded');

    # the same name in a Latin-1 CSV, told so
    $f = spew('latin.csv', "id,title\nL3,Caf\xe9\n");
    ($rc, $out, $err) = feed('--encoding', 'latin-1', $f);
    is($rc, 0, '--encoding latin-1: exit 0');
    is(redis_cmd('HGET', 'rt:p:L3', 'name'), encode_utf8("Caf\x{e9}"),
       'the name stored as UTF-8');
};

subtest 'a feed that breaks off' => sub {
    fresh();
    redis_cmd('HSET', 'rt:p:OLD', 'name', 'Old');
    my $xml = slurp("$DATA/google.xml");
    my $f = spew('cut.xml', substr($xml, 0, index($xml, '<g:id>VASE-3')));
    my ($rc, $out, $err) = feed('--delete-missing', $f);
    is($rc, 3, 'a truncated XML: exit 3');
    like($err, qr/cut\.xml: XML line \d+, column \d+: /, 'where it broke');
    like($err, qr/loaded 2/, 'the items before the break are loaded');
    like($err, qr/--delete-missing: the feed was not read to its end: nothing deleted/,
         '--delete-missing does not run');
    is(redis_cmd('EXISTS', 'rt:p:OLD'), 1, 'OLD is still there');

    $f = spew('quote.csv', qq{id,title,price\nA1,Fine,1.00 USD\nA2,"Open quote,2.00 USD\nA3,Lost,3.00 USD\nA4,Lost too,4.00 USD\n});
    ($rc, $out, $err) = feed('--delete-missing', $f);
    is($rc, 3, 'an unbalanced quote: exit 3');
    like($err, qr/^row 3: skipped: 2 fields, the header has 3 \(a quote opened on line 3 is not closed/m,
         'reported with its line');
    is(redis_cmd('EXISTS', 'rt:p:A1'), 1, 'the row before it is loaded');
    is(redis_cmd('EXISTS', 'rt:p:OLD'), 1, 'and nothing deleted');
};

subtest '--dry-run writes nothing' => sub {
    fresh();
    my ($rc, $out, $err) = feed('--dry-run', "$DATA/google.tsv");
    is($rc, 0, 'exit 0');
    my @lines = map { decode_json($_) } split /\n/, $out;
    is(scalar @lines, 6, 'six JSON lines');
    is_deeply($lines[0], { row => 'row 2', key => 'rt:p:MUG-1', ttl => undef,
        out_of_stock => JSON::PP::false, hset => { name => 'Harbor Mug',
        price => '12.00', currency => 'USD', in_stock => '1',
        url => 'https://shop.example/p/mug',
        image => 'https://cdn.shop.example/img/mug.jpg' } },
        'the first says what would be written');
    like($err, qr/would load 6 \(2 out of stock\)/, 'the summary');
    is(redis_cmd('DBSIZE'), 0, 'Redis is empty');

    ($rc, $out, $err) = feed('--redis', '127.0.0.1:1', '--dry-run',
                             "$DATA/meta.csv");
    is($rc, 0, '--dry-run does not connect to Redis');
};

subtest '--delete-missing' => sub {
    fresh();
    redis_cmd('HSET', "rt:p:$_", 'name', $_) for qw(MUG-1 GONE-1 GONE-2);
    redis_cmd('SET', 'rt:p:A-STRING', 'not a hash');
    redis_cmd('HSET', 'rt:pool', 'x', 1);
    redis_cmd('HSET', 'other:p:GONE-3', 'name', 'x');
    my ($rc, $out, $err) = feed('--dry-run', '--delete-missing',
                                "$DATA/google.tsv");
    is($rc, 0, 'dry run: exit 0');
    is_deeply([ grep { /delete/ } split /\n/, $out ],
              [ '{"delete": "rt:p:GONE-1"}', '{"delete": "rt:p:GONE-2"}' ],
              'dry run: lists the two hashes not in the feed');
    is(redis_cmd('EXISTS', 'rt:p:GONE-1'), 1, 'dry run: deletes nothing');

    ($rc, $out, $err) = feed('--delete-missing', "$DATA/google.tsv");
    is($rc, 0, 'exit 0');
    like($err, qr/loaded 6 .*deleted 2$/m, 'the summary counts 2 deleted');
    is_deeply(product_keys(),
              [ map { "rt:p:$_" } qw(A-STRING LAMP-1 MUG-1 NOTE-1 POSTER-1
                                     TEE-M TEE-S) ],
              'the feed\'s products stay; a key that is not a hash stays');
    is_deeply([ map { redis_cmd('EXISTS', $_) } 'rt:pool', 'other:p:GONE-3' ],
              [ 1, 1 ], 'keys outside PREFIXp:* are not touched');

    # more than half of the catalogue would go: refused
    my $f = spew('one.tsv', "id\ttitle\nMUG-1\tHarbor Mug\n");
    ($rc, $out, $err) = feed('--delete-missing', $f);
    is($rc, 3, 'a feed that would delete most products: exit 3');
    like($err, qr/--delete-missing: would delete 5 of 6 products \(83%\), more than --delete-limit 50%: nothing deleted/,
         'and says why');
    is(scalar @{ product_keys() }, 7, 'nothing deleted');
    ($rc, $out, $err) = feed('--delete-missing', '--delete-limit', '100',
                             $f);
    is($rc, 0, '--delete-limit 100 lets it');
    is_deeply(product_keys(), [ 'rt:p:A-STRING', 'rt:p:MUG-1' ],
              'the five others deleted');

    # a prefix with glob characters matches only itself
    fresh();
    redis_cmd('HSET', $_, 'name', 'x') for 'a*:p:X', 'ab:p:Y', 'a*:p:MUG-1';
    ($rc, $out, $err) = feed('--prefix', 'a*:', '--delete-missing',
                             '--delete-limit', '100', $f);
    is($rc, 0, '--prefix "a*:"');
    is_deeply([ map { redis_cmd('EXISTS', $_) } 'a*:p:X', 'ab:p:Y',
                'a*:p:MUG-1' ], [ 0, 1, 1 ],
              'a*:p:X deleted, ab:p:Y (matched by an unescaped glob) kept');

    # a row too broken to read still protects its product
    fresh();
    redis_cmd('HSET', "rt:p:$_", 'name', $_) for qw(KEEP-1 OK-1);
    $f = spew('broken-row.tsv', "id\ttitle\tprice\nOK-1\tFine\t1.00 USD\n"
                                . "KEEP-1\tTab\tin title\t2.00 USD\n");
    ($rc, $out, $err) = feed('--delete-missing', '--delete-limit', '100',
                             $f);
    is(redis_cmd('EXISTS', 'rt:p:KEEP-1'), 1,
       'a product whose row has a field too many is not deleted');
};

subtest 'Redis: db, ACL user, unix socket, unreachable, gzip, stdin' => sub {
    fresh();
    my ($rc, $out, $err) = feed('--db', '3', "$DATA/meta.csv");
    is($rc, 0, '--db 3');
    is(redis_cmd('DBSIZE'), 0, 'db 0 is empty');
    redis_cmd('SWAPDB', 0, 3);
    is(hash('rt:p:M-100')->{price}, '9.99', 'the products are in db 3');
    fresh();

    redis_cmd('ACL', 'SETUSER', 'feeder', 'on', '>s3cret', '~rt:*', '+@all');
    ($rc, $out, $err) = feed({ RETARGET_REDIS_PASSWORD => 's3cret' },
                             '--user', 'feeder', "$DATA/meta.csv");
    is($rc, 0, 'an ACL user, the password from the environment');
    ($rc, $out, $err) = feed('--user', 'feeder', '--password', 'wrong',
                             "$DATA/meta.csv");
    is($rc, 1, 'a wrong password: exit 1');
    like($err, qr/Redis: AUTH: WRONGPASS/, 'and Redis says why');
    redis_cmd('ACL', 'DELUSER', 'feeder');

    my ($closed) = Test::Retarget::free_ports(1);
    ($rc, $out, $err) = feed('--redis', "127.0.0.1:$closed",
                             "$DATA/meta.csv");
    is($rc, 1, 'Redis unreachable: exit 1');
    like($err, qr/cannot connect to 127\.0\.0\.1:$closed/, 'and says so');
    no_traceback($err, 'unreachable');

    # a second redis-server on a unix socket only
    my $sock = "$tmp/redis.sock";
    unlink $sock;
    my $pid = fork // die;
    if (!$pid) {
        open STDOUT, '>', "$tmp/redis2.log";
        open STDERR, '>&', \*STDOUT;
        exec('redis-server', '--port', '0', '--unixsocket', $sock,
             '--save', '', '--appendonly', 'no', '--dir', $tmp)
            or POSIX::_exit(127);
    }
    eventually(sub { -S $sock }, 5);
    ($rc, $out, $err) = feed('--redis', "unix:$sock", "$DATA/meta.csv");
    is($rc, 0, 'unix:/path');
    like($err, qr/loaded 5/, 'loaded over the unix socket');
    kill 'TERM', $pid;
    waitpid($pid, 0);

    my $gz = "$tmp/google.tsv.gz";
    gzip("$DATA/google.tsv" => $gz) or die $GzipError;
    ($rc, $out, $err) = feed($gz);
    is($rc, 0, 'a gzipped feed');
    like($err, qr/delimited \(tab\), 6 rows: loaded 6/, 'read through');

    ($rc, $out, $err) = feed({ stdin => "$DATA/google.xml" }, '-');
    is($rc, 0, 'standard input');
    like($err, qr/-: XML \(RSS\), 4 items: loaded 3/, 'read');

    my $f = spew('bare.csv', "id,title,price\nB1,Bare,15.00\n");
    ($rc, $out, $err) = feed('--currency', 'eur', $f);
    is_deeply([ @{ hash('rt:p:B1') }{qw(price currency)} ], [ '15.00', 'EUR' ],
              '--currency for prices without one');

    # a key of another type where a product goes: that one is refused
    redis_cmd('SET', 'rt:p:M-102', 'a string');
    ($rc, $out, $err) = feed("$DATA/meta.csv");
    is($rc, 3, 'a write Redis refuses: exit 3');
    like($err, qr/^row 4: Redis refused the write of "M-102": WRONGTYPE/m,
         'reported with its row');
    like($err, qr/loaded 4 .*refused by Redis 1/, 'the others loaded');
};

subtest 'compare before write: an unchanged feed writes nothing' => sub {
    fresh();
    my ($rc, $out, $err) = feed("$DATA/google.tsv");
    like($err, qr/loaded 6 \(2 out of stock\), unchanged 0, changed 6,/,
         'the first load writes every product');

    # BCAST tracking tells every worker of every write under rt:p:, equal
    # values or not: a load of the same feed must write nothing
    my $w;
    ($w, $rc, $out, $err) = writes_during(sub { feed("$DATA/google.tsv") });
    is($rc, 0, 'the same feed again: exit 0');
    like($err, qr/loaded 6 \(2 out of stock\), unchanged 6, changed 0, skipped 0/,
         'the summary: 6 unchanged, 0 changed');
    is_deeply($w, {}, 'no write command at all (INFO commandstats: no '
                      . 'HSET, SADD, SREM, PERSIST, EXPIRE)')
        or diag(explain($w));

    # one price and one availability changed: only those fields
    my $tsv = slurp("$DATA/google.tsv");
    (my $changed = $tsv) =~ s/(MUG-1\t[^\n]*?)12\.00 USD/${1}13.00 USD/
        or die 'MUG-1 price';
    $changed =~ s/(NOTE-1\t[^\n]*?)preorder/${1}out_of_stock/
        or die 'NOTE-1 availability';
    my $f = spew('changed.tsv', $changed);
    ($w, $rc, $out, $err) = monitored(sub { feed($f) });
    like($err, qr/loaded 6 \(3 out of stock\), unchanged 4, changed 2,/,
         'a changed price and a changed availability: 2 changed');
    is_deeply($w, [ 'HSET rt:p:MUG-1 price 13.00',
                    'HSET rt:p:NOTE-1 in_stock 0',
                    'SADD rt:out_of_stock NOTE-1' ],
              'MONITOR: only the changed fields, SADD of the one sku')
        or diag(explain($w));
    is(hash('rt:p:MUG-1')->{name}, 'Harbor Mug', 'the rest kept');

    # back: SREM of the one sku, nothing else
    ($w, $rc, $out, $err) = monitored(sub { feed("$DATA/google.tsv") });
    is_deeply($w, [ 'HSET rt:p:MUG-1 price 12.00',
                    'HSET rt:p:NOTE-1 in_stock 1',
                    'SREM rt:out_of_stock NOTE-1' ],
              'and back: SREM of the one sku') or diag(explain($w));

    # the set or a field changed by someone else is put right
    redis_cmd('SREM', 'rt:out_of_stock', 'TEE-S');
    redis_cmd('HSET', 'rt:p:LAMP-1', 'name', 'Lamp (edited by hand)');
    ($w) = monitored(sub { feed("$DATA/google.tsv") });
    is_deeply($w, [ 'HSET rt:p:LAMP-1 name Brass Lamp',
                    'SADD rt:out_of_stock TEE-S' ],
              'a hand edit and a lost set member written back')
        or diag(explain($w));

    # a TTL a catalog event gave: PERSIST only, counted apart
    redis_cmd('EXPIRE', 'rt:p:TEE-M', 1000);
    ($w, $rc, $out, $err) = monitored(sub { feed("$DATA/google.tsv") });
    is_deeply($w, [ 'PERSIST rt:p:TEE-M' ], 'a TTL: only the PERSIST');
    like($err, qr/unchanged 5, changed 0, .*expiry renewed 1$/m,
         'counted as an expiry renewed');
    is(redis_cmd('TTL', 'rt:p:TEE-M'), -1, 'persistent again');

    # --ttl: EXPIRE of every product the first time, then only when less
    # than half of it is left
    ($w, $rc, $out, $err) = writes_during(sub {
        feed('--ttl', '2d', "$DATA/google.tsv") });
    is_deeply($w, { expire => 6 }, '--ttl 2d on persistent products: '
                                   . '6 EXPIRE, no HSET');
    ($w) = writes_during(sub { feed('--ttl', '2d', "$DATA/google.tsv") });
    is_deeply($w, {}, '--ttl 2d again: nothing') or diag(explain($w));
    redis_cmd('EXPIRE', 'rt:p:MUG-1', 3600);
    ($w) = monitored(sub { feed('--ttl', '2d', "$DATA/google.tsv") });
    is_deeply($w, [ 'EXPIRE rt:p:MUG-1 172800' ],
              'an hour left of 2 days: that one renewed');

    # --force: everything, as without compare
    ($w, $rc, $out, $err) = writes_during(sub {
        feed('--force', "$DATA/google.tsv") });
    is_deeply($w, { hset => 6, persist => 6, sadd => 1, srem => 1 },
              '--force: every product written');
    like($err, qr/unchanged 0, changed 6,/, '--force: 6 changed');

    # variants in one batch compared once: VEST out of stock in one row,
    # in stock in the next: in stock, one HSET
    $f = spew('variants.tsv', "id\ttitle\titem_group_id\tavailability\n"
              . "V-S\tVest\tVEST\tout_of_stock\n"
              . "V-M\tVest\tVEST\tin_stock\n");
    ($w) = monitored(sub { feed('--sku-column', 'item_group_id', $f) });
    is_deeply($w, [ 'HSET rt:p:VEST name Vest in_stock 1' ],
              'variants: one write, in stock') or diag(explain($w));
    ($w) = monitored(sub { feed('--sku-column', 'item_group_id', $f) });
    is_deeply($w, [], 'and nothing the second time') or diag(explain($w));

    # a product the feed cannot write (WRONGTYPE) is still reported
    redis_cmd('SET', 'rt:p:MUG-1', 'a string');
    ($rc, $out, $err) = feed("$DATA/google.tsv");
    is($rc, 3, 'WRONGTYPE: exit 3');
    like($err, qr/row 2: Redis refused the write of "MUG-1": WRONGTYPE/,
         'WRONGTYPE reported by row');
    like($err, qr/unchanged 5, changed 0,.*refused by Redis 1/,
         'the others unchanged');

    # Redis before 6.2 has no SMISMEMBER: SISMEMBER each
    my $sock = "$tmp/redis-old.sock";
    unlink $sock;
    my $pid = fork // die;
    if (!$pid) {
        open STDOUT, '>', "$tmp/redis-old.log";
        open STDERR, '>&', \*STDOUT;
        exec('redis-server', '--port', '0', '--unixsocket', $sock,
             '--save', '', '--appendonly', 'no', '--dir', $tmp,
             '--rename-command', 'SMISMEMBER', '')
            or POSIX::_exit(127);
    }
    eventually(sub { -S $sock }, 5);
    ($rc, $out, $err) = feed('--redis', "unix:$sock", "$DATA/meta.csv");
    like($err, qr/loaded 5 \(2 out of stock\), unchanged 0, changed 5,/,
         'no SMISMEMBER: loaded');
    ($rc, $out, $err) = feed('--redis', "unix:$sock", "$DATA/meta.csv");
    is($rc, 0, 'no SMISMEMBER: exit 0 again');
    like($err, qr/loaded 5 \(2 out of stock\), unchanged 5, changed 0,/,
         'no SMISMEMBER: the set read by SISMEMBER, nothing written');
    no_traceback($err, 'no SMISMEMBER');
    kill 'TERM', $pid;
    waitpid($pid, 0);
};

subtest 'a large feed' => sub {
    fresh();
    my $n = 20_000;
    my $big = "id\ttitle\tdescription\tlink\tprice\tavailability\n";
    $big .= sprintf("P%05d\tProduct %d\t%s\thttps://shop.example/p/%d\t%d.%02d USD\t%s\n",
                    $_, $_, $_ == 7 ? 'x' x 1_000_000 : 'Nice.', $_,
                    $_ % 500, $_ % 100, $_ % 10 ? 'in_stock' : 'out_of_stock')
        for 1 .. $n;
    my $f = spew('big.tsv', $big);
    my $t0 = time;
    my ($rc, $out, $err) = feed($f);
    my $secs = time - $t0;
    is($rc, 0, 'exit 0');
    like($err, qr/$n rows: loaded $n \(2000 out of stock\), unchanged 0, changed $n, skipped 0/,
         "$n products, one with a 1 MB description");
    is(scalar @{ product_keys() }, $n, "$n hashes");
    is(redis_cmd('SCARD', 'rt:out_of_stock'), 2000, '2000 out of stock');
    is(hash('rt:p:P00007')->{price}, '7.07', 'the product with the huge field');
    diag(sprintf '%d products in %.2f s (%.0f/s)', $n, $secs, $n / $secs);
    ok($secs < 60, sprintf 'in %.2f s (a loaded machine: 6 s)', $secs);

    # the same feed again: read, compared, nothing written
    $t0 = time;
    (my $w, $rc, $out, $err) = writes_during(sub { feed($f) });
    $secs = time - $t0;
    like($err, qr/loaded $n \(2000 out of stock\), unchanged $n, changed 0,/,
         "the same $n again: all unchanged");
    is_deeply($w, {}, 'and nothing written') or diag(explain($w));
    diag(sprintf '%d unchanged products in %.2f s (%.0f/s)', $n, $secs,
         $n / $secs);
    ok($secs < 60, sprintf 'in %.2f s', $secs);
};

done_testing();
