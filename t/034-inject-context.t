# The injection point is the first "</body>" that is page markup: never
# one inside a script (in either quotes), a style, a textarea, a title or
# a comment (including the empty "<!-->" and "<!--->", and one closed by
# "--!>").  Each page is served in 16-byte buffers from 16 offsets, so
# that every tag, "<script" and "</script" included, is cut at every
# point, and by an upstream that sends one byte at a time.  "@@" marks
# where the notice goes.
use lib 't/lib';
use Test::Retarget;

default_http_config(q{
    retarget_secret 0123456789abcdef0123456789abcdef;
    retarget_notice $TEST_NGINX_SERVROOT/../data/n.html;
});

our @CASES = (
    q{<html><body><script>var s = "</body>";</script><p>x</p>@@</body></html>},
    q{<body><script>var s = '</body>';</script>@@</body>},
    q{<body><style>/* </body> */ p { color: red }</style>@@</body>},
    q{<body><textarea name="t"></body></textarea>@@</body>},
    q{<body><title></BODY></title>@@</body>},
    q{<body><!-- </body> -->@@</body>},
    q{<body><!-->@@</body>},
    q{<body><!--->@@</body>},
    q{<body><!---->@@</body>},
    q{<body><!-- a --!>@@</body>},
    q{<body><!-- a --->@@</body>},
    q{<body><!-- a --!-- </body> -->@@</body>},
    q{<body><!-- a -> </body> --! </body> -- ></body> -->@@</body>},
    q{<body><!-- <script> -->@@</body>},
    q{<body><!-- <script> --><p>a</p>@@</body><script>"</body>"</script>},
    q{<body><script type="text/javascript" data-x="a>b" data-y='c>d' e=f>document.write("</body>");</script>@@</body>},
    q{<body><script
async>x = "</body>"</script >@@</body>},
    q{<BODY><SCRIPT>x = "</BODY>"</SCRIPT>@@</BODY></HTML>},
    q{<body><ScRiPt>x = "</body>"</sCrIpT>@@</BoDy>},
    q{<body><script>a = "</scrip</body>"; b = "</scriptx></body>"; c = "<script></body>";</script>@@</body>},
    q{<body><script>a = "</style></body>"</script><style>p{}</style>@@</body>},
    q{<body><scripty>@@</body></scripty>},
    q{<body><script>document.write("</body>");</script><p>no end tag</p>@@},
    q{<body><!-- never closed </body>@@},
);

our (@PAGES, @EXPECTED);
for my $case (@CASES) {
    for my $pad (0 .. 15) {
        my $page = ('x' x $pad) . $case . "\n";
        # "@@" at the very end: no real "</body>", the notice ends the page
        (my $exp = $page) =~ s/@@\n\z/\n@@/;
        $exp =~ s/@@/[N]/;
        $page =~ s/@@//;
        push @PAGES, $page;
        push @EXPECTED, $exp;
    }
}

our @FILES = map { "c$_.html" } 0 .. $#PAGES;

sub write_pages {
    for my $i (0 .. $#PAGES) {
        open my $fh, '>', "$ENV{TEST_NGINX_HTML_DIR}/$FILES[$i]" or die $!;
        print $fh $PAGES[$i];
        close $fh;
    }
}

run_tests();

__DATA__

=== TEST 1: static files in 16-byte buffers, every split point
--- config
retarget on;
location / { output_buffers 1 16; sendfile off; }
--- init eval
main::write_pages();
--- request eval
[map { "GET /$_" } @main::FILES]
--- response_body eval
[@main::EXPECTED]

=== TEST 2: the whole page in one buffer
--- config
retarget on;
location / { }
--- init eval
main::write_pages();
--- request eval
[map { "GET /$_" } @main::FILES[grep { $_ % 16 == 0 } 0 .. $#main::FILES]]
--- response_body eval
[@main::EXPECTED[grep { $_ % 16 == 0 } 0 .. $#main::EXPECTED]]

=== TEST 3: trickled one byte at a time: quotes, comments, "</script" cut
--- config
retarget on;
location / { proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT; proxy_buffering off; }
--- backend eval
my $body = qq{<html><body><script type="x">var s = "</body>"; var t = '</BODY>';</scrip</script><!-- </body> --!><style></body></style></b</body></html>\n};
["HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n", split //, $body]
--- backend_delay: 0.005
--- request
GET /t
--- timeout: 10
--- response_body
<html><body><script type="x">var s = "</body>"; var t = '</BODY>';</scrip</script><!-- </body> --!><style></body></style></b[N]</body></html>

=== TEST 4: trickled, only "</body>" inside a script: at the end
--- config
retarget on;
location / { proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT; proxy_buffering off; }
--- backend eval
my $body = qq{<p><script>"</body>"</script></body};
["HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n", split //, $body]
--- backend_delay: 0.005
--- request
GET /t
--- timeout: 10
--- response_body chomp
<p><script>"</body>"</script></body[N]
