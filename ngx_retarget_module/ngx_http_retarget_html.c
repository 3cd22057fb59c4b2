
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Where the snippet goes: the first "</body>" (any letter case, exactly
 * those seven bytes, as the scan before this tokenizer took it: a
 * "</body >" is passed over, and the snippet then goes before the next
 * "</body>" or at the end) that is page markup, found by a small
 * streaming tokenizer after HTML's own (WHATWG "Tokenization") for the
 * few states that matter here.  The other tag names end, as in HTML, at
 * white space, "/" or ">".
 *
 *   data        text and tags: looks for "<" that may begin "</body>",
 *               "<!--", "<script", "<style", "<textarea" or "<title"
 *   tag         a "<..." being matched against those, byte by byte
 *   attrs       the attributes of a script, style, textarea or title
 *               start tag (quoted values may hold ">")
 *   raw         the element's text (raw text for script and style,
 *               RCDATA for textarea and title): only its own end tag,
 *               "</script" and so on, ends it
 *   comment     "<!--" to "-->" or "--!>"; "<!-->" and "<!--->" are
 *               empty comments, as in browsers
 *
 * A "</body>" in a script's string, a style, a textarea, a title or a
 * comment is therefore not an injection point.
 *
 * The state, and a partial match, carries over from one buffer to the
 * next, so the page is never buffered.  The only bytes the caller must
 * hold back are those of a partial "</body>" at the end of a buffer, at
 * most NGX_HTTP_RETARGET_HTML_MAX_TAIL (6): the seventh byte tells.
 *
 * What it does not model (each rare in pages, and each only moves the
 * snippet to the end of the page or to an earlier "</body>" that a
 * browser would not take): the attributes of other elements (a
 * "</body>" inside a quoted attribute value of a <div> is taken), the
 * script's "escaped" states ("<!--<script>" inside a script), the other
 * raw text elements (xmp, iframe, noembed, noframes, noscript,
 * plaintext), and bogus comments ("<!x>", "<?x>").
 *
 * The fast paths: in data, SSE2 looks at 32 positions at once for "<",
 * and only a "<" followed by a byte pair those tags begin with ("/b",
 * "!-", "sc", "st", "te", "ti", in any case) is looked at further; in
 * raw text SSE2 looks for "</" and the end tag's first letter; in
 * comments memchr() looks for "-".
 */


#include "ngx_http_retarget_html.h"

#if (defined __SSE2__)
#include <emmintrin.h>
#endif


typedef enum {
    ngx_http_retarget_html_data = 0,
    ngx_http_retarget_html_tag,
    ngx_http_retarget_html_attrs,
    ngx_http_retarget_html_attr_eq,
    ngx_http_retarget_html_attr_unquoted,
    ngx_http_retarget_html_attr_dq,
    ngx_http_retarget_html_attr_sq,
    ngx_http_retarget_html_raw,
    ngx_http_retarget_html_comment_start,
    ngx_http_retarget_html_comment_start_dash,
    ngx_http_retarget_html_comment,
    ngx_http_retarget_html_comment_dash,
    ngx_http_retarget_html_comment_end,
    ngx_http_retarget_html_comment_bang
} ngx_http_retarget_html_state_e;


/* what one byte of a "<..." did */
typedef enum {
    ngx_http_retarget_html_more = 0,    /* read, the match goes on */
    ngx_http_retarget_html_again,       /* no tag: read it again as text */
    ngx_http_retarget_html_next,        /* read, a tag was recognized */
    ngx_http_retarget_html_body         /* "</body>" */
} ngx_http_retarget_html_step_e;


/* the tags; bit i of h->alive stands for tags[i] */
#define NGX_HTTP_RETARGET_HTML_BODY     0
#define NGX_HTTP_RETARGET_HTML_COMMENT  1
#define NGX_HTTP_RETARGET_HTML_START    2       /* 2-5: start tags */
#define NGX_HTTP_RETARGET_HTML_END      6       /* 6-9: their end tags */
#define NGX_HTTP_RETARGET_HTML_NTAGS    10
#define NGX_HTTP_RETARGET_HTML_IN_DATA  0x3f    /* bits 0-5 */
#define NGX_HTTP_RETARGET_HTML_LONGEST  10      /* "</textarea" */

#define ngx_http_retarget_html_delim(c)                                      \
    ((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\f'               \
     || (c) == '\r' || (c) == '/' || (c) == '>')

#define ngx_http_retarget_html_space(c)                                      \
    ((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\f' || (c) == '\r')


static ngx_http_retarget_html_step_e ngx_http_retarget_html_tag_whole(
    ngx_http_retarget_html_t *h, u_char **pos);
static ngx_http_retarget_html_step_e ngx_http_retarget_html_tag_byte(
    ngx_http_retarget_html_t *h, u_char c);
static void ngx_http_retarget_html_enter(ngx_http_retarget_html_t *h,
    ngx_uint_t i, u_char c);
static u_char *ngx_http_retarget_html_data_next(u_char *p, u_char *last);
static ngx_uint_t ngx_http_retarget_html_may_start(u_char *p, u_char *last);
static ngx_inline ngx_uint_t ngx_http_retarget_html_pair(u_char *p);
static u_char *ngx_http_retarget_html_raw_next(u_char *p, u_char *last,
    u_char first);


static ngx_str_t  ngx_http_retarget_html_tags[] = {
    ngx_string("</body"),
    ngx_string("<!--"),
    ngx_string("<script"),
    ngx_string("<style"),
    ngx_string("<textarea"),
    ngx_string("<title"),
    ngx_string("</script"),
    ngx_string("</style"),
    ngx_string("</textarea"),
    ngx_string("</title")
};


/*
 * The tags (bits of h->alive) that "<" and a byte pair may begin, by the
 * bit ngx_http_retarget_html_pair() gives the pair
 */

static ngx_uint_t  ngx_http_retarget_html_pair_tags[16] = {
    [1] = 0x01,                 /* "</b": "</body" */
    [2] = 0x02,                 /* "<!-": "<!--" */
    [4] = 0x0c,                 /* "<sc", "<st": "<script", "<style" */
    [8] = 0x30                  /* "<te", "<ti": "<textarea", "<title" */
};


/*
 * Scans [p, last), the next bytes of the page.  NGX_OK: the injection
 * point was found, *at is its "<" in this buffer, or NULL when it is the
 * first of the h->tail bytes the caller held back from earlier buffers.
 * NGX_DECLINED: not in these bytes; h->tail is then how many of the last
 * bytes scanned (this buffer's, and maybe the held ones before them) may
 * begin it, and are to be held back.
 */

ngx_int_t
ngx_http_retarget_html_scan(ngx_http_retarget_html_t *h, u_char *p,
    u_char *last, u_char **at)
{
    u_char  *q;

    q = p;

    while (q < last) {

        switch (h->state) {

        case ngx_http_retarget_html_data:
            q = ngx_http_retarget_html_data_next(q, last);

            if (q == NULL) {
                q = last;
                break;
            }

            /* the tags its two next bytes may begin, when they are here */

            h->state = ngx_http_retarget_html_tag;
            h->alive = (last - q >= 3)
                       ? ngx_http_retarget_html_pair_tags[
                             ngx_http_retarget_html_pair(q)]
                       : NGX_HTTP_RETARGET_HTML_IN_DATA;
            h->matched = 0;
            break;

        case ngx_http_retarget_html_raw:
            q = ngx_http_retarget_html_raw_next(q, last,
                                   ngx_http_retarget_html_tags[h->raw].data[1]);

            if (q == NULL) {
                q = last;
                break;
            }

            h->state = ngx_http_retarget_html_tag;
            h->alive = (ngx_uint_t) 1 << (h->raw + NGX_HTTP_RETARGET_HTML_END
                                          - NGX_HTTP_RETARGET_HTML_START);
            h->matched = 0;
            break;

        case ngx_http_retarget_html_tag:

            if (h->matched == 0
                && last - q > NGX_HTTP_RETARGET_HTML_LONGEST)
            {
                /* the fast path: the whole tag is in this buffer */

                switch (ngx_http_retarget_html_tag_whole(h, &q)) {

                case ngx_http_retarget_html_body:
                    *at = q;
                    h->state = ngx_http_retarget_html_data;
                    h->tail = 0;
                    return NGX_OK;

                default:
                    break;
                }

                break;
            }

            switch (ngx_http_retarget_html_tag_byte(h, *q)) {

            case ngx_http_retarget_html_body:
                *at = ((size_t) (q - p) >= h->matched) ? q - h->matched
                                                       : NULL;
                h->state = ngx_http_retarget_html_data;
                h->tail = 0;
                return NGX_OK;

            case ngx_http_retarget_html_again:
                /* h->state is data or raw again */
                break;

            default:
                q++;
            }

            break;

        case ngx_http_retarget_html_attrs:

            for ( /* void */ ; q < last; q++) {
                if (*q == '>') {
                    h->state = ngx_http_retarget_html_raw;
                    q++;
                    break;
                }

                if (*q == '=') {
                    h->state = ngx_http_retarget_html_attr_eq;
                    q++;
                    break;
                }
            }

            break;

        case ngx_http_retarget_html_attr_eq:

            switch (*q) {
            case '"':
                h->state = ngx_http_retarget_html_attr_dq;
                break;
            case '\'':
                h->state = ngx_http_retarget_html_attr_sq;
                break;
            case '>':
                h->state = ngx_http_retarget_html_raw;
                break;
            default:
                if (!ngx_http_retarget_html_space(*q)) {
                    h->state = ngx_http_retarget_html_attr_unquoted;
                }
            }

            q++;
            break;

        case ngx_http_retarget_html_attr_unquoted:

            for ( /* void */ ; q < last; q++) {
                if (*q == '>') {
                    h->state = ngx_http_retarget_html_raw;
                    q++;
                    break;
                }

                if (ngx_http_retarget_html_space(*q)) {
                    h->state = ngx_http_retarget_html_attrs;
                    q++;
                    break;
                }
            }

            break;

        case ngx_http_retarget_html_attr_dq:
        case ngx_http_retarget_html_attr_sq:
            q = memchr(q, h->state == ngx_http_retarget_html_attr_dq
                          ? '"' : '\'', last - q);

            if (q == NULL) {
                q = last;
                break;
            }

            h->state = ngx_http_retarget_html_attrs;
            q++;
            break;

        case ngx_http_retarget_html_comment_start:
        case ngx_http_retarget_html_comment_start_dash:

            if (*q == '>') {
                /* "<!-->" and "<!--->": an empty comment */
                h->state = ngx_http_retarget_html_data;
                q++;

            } else if (*q == '-') {
                h->state = (h->state == ngx_http_retarget_html_comment_start)
                           ? ngx_http_retarget_html_comment_start_dash
                           : ngx_http_retarget_html_comment_end;
                q++;

            } else {
                h->state = ngx_http_retarget_html_comment;
            }

            break;

        case ngx_http_retarget_html_comment:
            q = memchr(q, '-', last - q);

            if (q == NULL) {
                q = last;
                break;
            }

            h->state = ngx_http_retarget_html_comment_dash;
            q++;
            break;

        case ngx_http_retarget_html_comment_dash:

            if (*q == '-') {
                h->state = ngx_http_retarget_html_comment_end;
                q++;

            } else {
                h->state = ngx_http_retarget_html_comment;
            }

            break;

        case ngx_http_retarget_html_comment_end:

            switch (*q) {
            case '>':
                h->state = ngx_http_retarget_html_data;
                q++;
                break;
            case '!':
                h->state = ngx_http_retarget_html_comment_bang;
                q++;
                break;
            case '-':
                /* "--->" ends it too */
                q++;
                break;
            default:
                h->state = ngx_http_retarget_html_comment;
            }

            break;

        default: /* ngx_http_retarget_html_comment_bang */

            if (*q == '>') {
                h->state = ngx_http_retarget_html_data;
                q++;

            } else if (*q == '-') {
                h->state = ngx_http_retarget_html_comment_dash;
                q++;

            } else {
                h->state = ngx_http_retarget_html_comment;
            }
        }
    }

    h->tail = (h->state == ngx_http_retarget_html_tag
               && (h->alive & (1 << NGX_HTTP_RETARGET_HTML_BODY)))
              ? h->matched : 0;

    return NGX_DECLINED;
}


/*
 * The next byte c of a "<...": the tags it may still be are h->alive,
 * h->matched bytes of it were read.  Each tag name ends with a delimiter
 * (it is not a prefix of a longer name), "<!--" does not.
 */

static ngx_http_retarget_html_step_e
ngx_http_retarget_html_tag_byte(ngx_http_retarget_html_t *h, u_char c)
{
    ngx_uint_t   i, m, next;
    ngx_str_t   *tag;

    m = h->matched;
    next = 0;

    for (i = 0; i < NGX_HTTP_RETARGET_HTML_NTAGS; i++) {

        if (!(h->alive & ((ngx_uint_t) 1 << i))) {
            continue;
        }

        tag = &ngx_http_retarget_html_tags[i];

        if (m < tag->len) {
            if (ngx_tolower(c) == tag->data[m]) {
                next |= (ngx_uint_t) 1 << i;
            }

            continue;
        }

        /* the whole name was read: c ends it, or it is a longer name */

        if (i == NGX_HTTP_RETARGET_HTML_BODY) {
            if (c == '>') {
                return ngx_http_retarget_html_body;
            }

            continue;
        }

        if (!ngx_http_retarget_html_delim(c)) {
            continue;
        }

        ngx_http_retarget_html_enter(h, i, c);

        return ngx_http_retarget_html_next;
    }

    if (next == 0) {
        h->state = h->raw ? ngx_http_retarget_html_raw
                          : ngx_http_retarget_html_data;
        return ngx_http_retarget_html_again;
    }

    h->alive = next;
    h->matched = m + 1;

    if (next == (1 << NGX_HTTP_RETARGET_HTML_COMMENT)
        && h->matched == ngx_http_retarget_html_tags[1].len)
    {
        h->state = ngx_http_retarget_html_comment_start;
        return ngx_http_retarget_html_next;
    }

    return ngx_http_retarget_html_more;
}


/*
 * The same as ngx_http_retarget_html_tag_byte() over the bytes of a tag,
 * when all of them, and the delimiter after, are at *pos: moves *pos past
 * what was read; for "</body>", leaves it at the "<".
 */

static ngx_http_retarget_html_step_e
ngx_http_retarget_html_tag_whole(ngx_http_retarget_html_t *h, u_char **pos)
{
    u_char      *q;
    ngx_uint_t   i, j;
    ngx_str_t   *tag;

    q = *pos;

    for (i = 0; i < NGX_HTTP_RETARGET_HTML_NTAGS; i++) {

        if (!(h->alive & ((ngx_uint_t) 1 << i))) {
            continue;
        }

        tag = &ngx_http_retarget_html_tags[i];

        for (j = 1; j < tag->len; j++) {
            if (ngx_tolower(q[j]) != tag->data[j]) {
                break;
            }
        }

        if (j < tag->len) {
            continue;
        }

        if (i == NGX_HTTP_RETARGET_HTML_BODY) {
            if (q[j] == '>') {
                return ngx_http_retarget_html_body;
            }

            continue;
        }

        if (i == NGX_HTTP_RETARGET_HTML_COMMENT) {
            h->state = ngx_http_retarget_html_comment_start;
            *pos = q + j;
            return ngx_http_retarget_html_next;
        }

        if (!ngx_http_retarget_html_delim(q[j])) {
            continue;
        }

        ngx_http_retarget_html_enter(h, i, q[j]);
        *pos = q + j + 1;

        return ngx_http_retarget_html_next;
    }

    /* not a tag looked for: on after its "<" */

    h->state = h->raw ? ngx_http_retarget_html_raw
                      : ngx_http_retarget_html_data;
    *pos = q + 1;

    return ngx_http_retarget_html_again;
}


/* tags[i] and the delimiter c after it were read */

static void
ngx_http_retarget_html_enter(ngx_http_retarget_html_t *h, ngx_uint_t i,
    u_char c)
{
    if (i < NGX_HTTP_RETARGET_HTML_END) {
        /* a start tag: its attributes, then its text */
        h->raw = i;
        h->state = (c == '>') ? ngx_http_retarget_html_raw
                              : ngx_http_retarget_html_attrs;

    } else {
        /* its end tag: what follows is page markup again */
        h->raw = 0;
        h->state = ngx_http_retarget_html_data;
    }
}


/*
 * The next "<" from p on that may begin one of the tags looked for.
 *
 * SSE2 finds the "<" of 32 bytes at once; each is then tested alone.  A
 * page has a "<" every 30 bytes or so, almost none of them one of these
 * tags, and a test of its two next bytes costs less than testing all 16
 * positions of a block for the six byte pairs whenever one "<" is in it
 * (callgrind, bench/page.html: 38 K instructions a page before, see
 * bench/RESULTS.md for after).
 */

static u_char *
ngx_http_retarget_html_data_next(u_char *p, u_char *last)
{
#if (defined __SSE2__)
    u_char    *q;
    unsigned   m;
    __m128i    lt, a, b;

    lt = _mm_set1_epi8('<');

    /* 34: the two bytes after a "<" at p + 31 are read too */

    while (last - p >= 34) {
        a = _mm_cmpeq_epi8(_mm_loadu_si128((__m128i *) p), lt);
        b = _mm_cmpeq_epi8(_mm_loadu_si128((__m128i *) (p + 16)), lt);

        m = (unsigned) _mm_movemask_epi8(a)
            | ((unsigned) _mm_movemask_epi8(b) << 16);

        while (m) {
            q = p + __builtin_ctz(m);

            if (ngx_http_retarget_html_pair(q)) {
                return q;
            }

            m &= m - 1;
        }

        p += 32;
    }
#endif

    for ( ;; ) {
        p = memchr(p, '<', last - p);

        if (p == NULL) {
            return NULL;
        }

        if (ngx_http_retarget_html_may_start(p, last)) {
            return p;
        }

        p++;
    }
}


/* whether the "<" at p may begin one of the tags; true too near the end */

static ngx_uint_t
ngx_http_retarget_html_may_start(u_char *p, u_char *last)
{
    return (last - p < 3) ? 1 : ngx_http_retarget_html_pair(p);
}


/*
 * Whether the two bytes after the "<" at p may begin one of the tags:
 * "</b", "<!-", "<sc", "<st", "<te", "<ti" (letters in any case).  Two
 * table lookups, no branch on the page's bytes: a bit of the first
 * table stands for a byte pair's first byte, the same bit of the second
 * for the second bytes that may follow it.
 */

static u_char  ngx_http_retarget_html_pair1[256] = {
    ['/'] = 1, ['!'] = 2, ['s'] = 4, ['S'] = 4, ['t'] = 8, ['T'] = 8
};

static u_char  ngx_http_retarget_html_pair2[256] = {
    ['b'] = 1, ['B'] = 1, ['-'] = 2,
    ['c'] = 4, ['C'] = 4, ['t'] = 4, ['T'] = 4,
    ['e'] = 8, ['E'] = 8, ['i'] = 8, ['I'] = 8
};


static ngx_inline ngx_uint_t
ngx_http_retarget_html_pair(u_char *p)
{
    return ngx_http_retarget_html_pair1[p[1]]
           & ngx_http_retarget_html_pair2[p[2]];
}


/* the next "<" from p on that may begin "</" and the end tag's name */

static u_char *
ngx_http_retarget_html_raw_next(u_char *p, u_char *last, u_char first)
{
#if (defined __SSE2__)
    unsigned   m;
    __m128i    a, b, c;

    while (last - p >= 18) {
        a = _mm_loadu_si128((__m128i *) p);
        b = _mm_loadu_si128((__m128i *) (p + 1));
        c = _mm_loadu_si128((__m128i *) (p + 2));

        m = _mm_movemask_epi8(
                _mm_and_si128(
                    _mm_and_si128(_mm_cmpeq_epi8(a, _mm_set1_epi8('<')),
                                  _mm_cmpeq_epi8(b, _mm_set1_epi8('/'))),
                    _mm_cmpeq_epi8(_mm_or_si128(c, _mm_set1_epi8(0x20)),
                                   _mm_set1_epi8(first))));

        if (m) {
            return p + __builtin_ctz(m);
        }

        p += 16;
    }
#endif

    for ( ;; ) {
        p = memchr(p, '<', last - p);

        if (p == NULL) {
            return NULL;
        }

        if (last - p < 3 || (p[1] == '/' && (p[2] | 0x20) == first)) {
            return p;
        }

        p++;
    }
}
