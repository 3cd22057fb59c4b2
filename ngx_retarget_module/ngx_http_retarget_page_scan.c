
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Product data from the page as it streams.  A small HTML tokenizer
 * (after WHATWG "Tokenization", for the states that matter: data, tags
 * and their attributes, comments, and the raw text of script, style,
 * textarea and title) carries its state from one buffer to the next, so
 * a tag, an attribute or an end tag cut by a buffer boundary is read as
 * if it were whole.  What it keeps:
 *
 *   - the text of a <script type="application/ld+json">, up to
 *     NGX_HTTP_RETARGET_PAGE_JSON_MAX bytes (a longer one is skipped),
 *     parsed with jansson at its end tag: the first schema.org Product,
 *     at the top, in an array, in "@graph" or in "mainEntity"
 *     (ngx_http_retarget_page_ld.c);
 *   - microdata: the open itemscope elements (a fixed stack), the
 *     itemprop values of the first Product and of its Offer, from
 *     content=, href=, src= or the element's text, and Magento's
 *     data-price-amount;
 *   - OpenGraph and Facebook product <meta> tags;
 *   - retarget_page_json: the text of <script type="application/json"
 *     id=ID>, or of the object literal of "var NAME = {...}" (also let,
 *     const, window.NAME, or a bare assignment) in an inline script,
 *     braces balanced outside strings.
 *
 * Every value is entity-decoded, its white space collapsed and trimmed;
 * a price is reduced to digits and a decimal point, an availability to
 * "1" or "0" (ngx_http_retarget_page_clean.c).  The first value found
 * for a field in a source is kept.
 * Memory: the fixed state here, attribute values of at most
 * NGX_HTTP_RETARGET_PAGE_ATTR_MAX bytes, one capture buffer that grows
 * to at most NGX_HTTP_RETARGET_PAGE_JSON_MAX, and the values found.
 */


#include "ngx_http_retarget_page_scan.h"
#include "ngx_http_retarget_page_ld.h"
#include "ngx_http_retarget_page_clean.h"


typedef enum {
    ngx_http_retarget_pt_data = 0,
    ngx_http_retarget_pt_tag_open,
    ngx_http_retarget_pt_markup,
    ngx_http_retarget_pt_markup_dash,
    ngx_http_retarget_pt_comment,
    ngx_http_retarget_pt_bogus,
    ngx_http_retarget_pt_end_open,
    ngx_http_retarget_pt_tag_name,
    ngx_http_retarget_pt_before_attr,
    ngx_http_retarget_pt_attr_name,
    ngx_http_retarget_pt_after_attr_name,
    ngx_http_retarget_pt_before_value,
    ngx_http_retarget_pt_value_dq,
    ngx_http_retarget_pt_value_sq,
    ngx_http_retarget_pt_value_unq,
    ngx_http_retarget_pt_raw
} ngx_http_retarget_page_state_e;


/* what the text of a raw element is for */
typedef enum {
    ngx_http_retarget_pc_skip = 0,
    ngx_http_retarget_pc_jsonld,
    ngx_http_retarget_pc_embed,
    ngx_http_retarget_pc_js
} ngx_http_retarget_page_content_e;


/* the var=NAME matcher */
typedef enum {
    ngx_http_retarget_pj_look = 0,
    ngx_http_retarget_pj_eq,
    ngx_http_retarget_pj_value,
    ngx_http_retarget_pj_object
} ngx_http_retarget_page_js_e;


/* the kinds of itemscope */
#define NGX_HTTP_RETARGET_PAGE_OTHER    0
#define NGX_HTTP_RETARGET_PAGE_PRODUCT  1
#define NGX_HTTP_RETARGET_PAGE_OFFER    2

#define ngx_http_retarget_page_space(c)                                      \
    ((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\f' || (c) == '\r')

#define ngx_http_retarget_page_find(p, last, c)                             \
    ((u_char *) memchr(p, c, (last) - (p)))

/* a name (already lowercase) is the literal */
#define ngx_http_retarget_page_is_lit(name, len, lit)                        \
    ((len) == sizeof(lit) - 1 && ngx_memcmp(name, lit, sizeof(lit) - 1) == 0)

/* white space, "/" or ">": a name ends; "=" too for an attribute name */
#define NGX_HTTP_RETARGET_PAGE_C_TAG   1
#define NGX_HTTP_RETARGET_PAGE_C_ATTR  2

#define ngx_http_retarget_page_tag_end(c)                                    \
    (ngx_http_retarget_page_class[c] & NGX_HTTP_RETARGET_PAGE_C_TAG)
#define ngx_http_retarget_page_attr_end(c)                                   \
    (ngx_http_retarget_page_class[c] & NGX_HTTP_RETARGET_PAGE_C_ATTR)


static void ngx_http_retarget_page_tag_begin(ngx_http_retarget_page_scan_t *s,
    ngx_uint_t end);
static u_char *ngx_http_retarget_page_tag_fast(
    ngx_http_retarget_page_scan_t *s, u_char *p, u_char *last, ngx_uint_t end);
static ngx_uint_t ngx_http_retarget_page_lit_ci(u_char *p, size_t len,
    const char *lit, size_t n);
static void ngx_http_retarget_page_name_add(u_char *name, size_t *len,
    u_char c);
static ngx_http_retarget_page_buf_t *ngx_http_retarget_page_attr(
    ngx_http_retarget_page_scan_t *s);
static void ngx_http_retarget_page_value_begin(
    ngx_http_retarget_page_scan_t *s);
static void ngx_http_retarget_page_attr_flag(ngx_http_retarget_page_scan_t *s);
static void ngx_http_retarget_page_buf_add(ngx_http_retarget_page_buf_t *b,
    u_char *p, size_t n);
static void ngx_http_retarget_page_tag_done(ngx_http_retarget_page_scan_t *s);
static ngx_uint_t ngx_http_retarget_page_is_void(u_char *name, size_t len);
static ngx_uint_t ngx_http_retarget_page_attr_is(
    ngx_http_retarget_page_buf_t *b, const char *s);
static ngx_uint_t ngx_http_retarget_page_script(
    ngx_http_retarget_page_scan_t *s);
static u_char *ngx_http_retarget_page_raw(ngx_http_retarget_page_scan_t *s,
    u_char *p, u_char *last);
static void ngx_http_retarget_page_content(ngx_http_retarget_page_scan_t *s,
    u_char *p, size_t n);
static void ngx_http_retarget_page_content_end(
    ngx_http_retarget_page_scan_t *s);
static void ngx_http_retarget_page_capture(ngx_http_retarget_page_scan_t *s,
    u_char *p, size_t n);
static void ngx_http_retarget_page_embedded(ngx_http_retarget_page_scan_t *s);
static void ngx_http_retarget_page_js(ngx_http_retarget_page_scan_t *s,
    u_char *p, size_t n);
static void ngx_http_retarget_page_js_reset(ngx_http_retarget_page_scan_t *s);

static void ngx_http_retarget_page_meta(ngx_http_retarget_page_scan_t *s);
static void ngx_http_retarget_page_start_tag(ngx_http_retarget_page_scan_t *s);
static void ngx_http_retarget_page_end_tag(ngx_http_retarget_page_scan_t *s);
static void ngx_http_retarget_page_prop(ngx_http_retarget_page_scan_t *s,
    ngx_http_retarget_page_scope_t *top, ngx_uint_t is_void);
static void ngx_http_retarget_page_prop_value(
    ngx_http_retarget_page_scan_t *s, ngx_http_retarget_page_scope_t *top,
    ngx_uint_t is_void);
static ngx_int_t ngx_http_retarget_page_prop_field(u_char *p, size_t len,
    ngx_uint_t kind);
static ngx_uint_t ngx_http_retarget_page_type_kind(u_char *p, size_t len);


static const u_char  ngx_http_retarget_page_class[256] = {
    /* \t \n \f \r */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 0, 3, 3, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* space, "/" */
    3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3,
    /* "=", ">" */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 3, 0
};


/* ngx_tolower() as a table: tag and attribute names, a byte at a time */

static const u_char  ngx_http_retarget_page_lower[256] = {
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
    12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
    24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35,
    36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
    48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59,
    60, 61, 62, 63, 64, 97, 98, 99, 100, 101, 102, 103,
    104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115,
    116, 117, 118, 119, 120, 121, 122, 91, 92, 93, 94, 95,
    96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107,
    108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119,
    120, 121, 122, 123, 124, 125, 126, 127, 128, 129, 130, 131,
    132, 133, 134, 135, 136, 137, 138, 139, 140, 141, 142, 143,
    144, 145, 146, 147, 148, 149, 150, 151, 152, 153, 154, 155,
    156, 157, 158, 159, 160, 161, 162, 163, 164, 165, 166, 167,
    168, 169, 170, 171, 172, 173, 174, 175, 176, 177, 178, 179,
    180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191,
    192, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202, 203,
    204, 205, 206, 207, 208, 209, 210, 211, 212, 213, 214, 215,
    216, 217, 218, 219, 220, 221, 222, 223, 224, 225, 226, 227,
    228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239,
    240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251,
    252, 253, 254, 255
};


static ngx_str_t  ngx_http_retarget_page_raw_names[] = {
    ngx_string("script"),
    ngx_string("style"),
    ngx_string("textarea"),
    ngx_string("title")
};


/* by ngx_http_retarget_page_attr_e, and the size each value may have */
static struct {
    ngx_str_t                      name;
    size_t                         size;
} ngx_http_retarget_page_attrs[] = {
    { ngx_string("type"), 64 },
    { ngx_string("id"), 128 },
    { ngx_string("itemtype"), 256 },
    { ngx_string("itemprop"), 128 },
    { ngx_string("itemscope"), 8 },
    { ngx_string("property"), 64 },
    { ngx_string("name"), 64 },
    { ngx_string("data-price-type"), 32 },
    { ngx_string("data-price-amount"), 32 },
    { ngx_string("content"), NGX_HTTP_RETARGET_PAGE_ATTR_MAX },
    { ngx_string("href"), NGX_HTTP_RETARGET_PAGE_ATTR_MAX },
    { ngx_string("src"), NGX_HTTP_RETARGET_PAGE_ATTR_MAX }
};


/* OpenGraph and Facebook product tags */
static struct {
    ngx_str_t                      name;
    ngx_uint_t                     field;
} ngx_http_retarget_page_og[] = {
    { ngx_string("og:title"), ngx_http_retarget_pf_name },
    { ngx_string("og:url"), ngx_http_retarget_pf_url },
    { ngx_string("og:image"), ngx_http_retarget_pf_image },
    { ngx_string("og:image:url"), ngx_http_retarget_pf_image },
    { ngx_string("product:price:amount"), ngx_http_retarget_pf_price },
    { ngx_string("og:price:amount"), ngx_http_retarget_pf_price },
    { ngx_string("product:price:currency"), ngx_http_retarget_pf_currency },
    { ngx_string("og:price:currency"), ngx_http_retarget_pf_currency },
    { ngx_string("product:availability"), ngx_http_retarget_pf_in_stock },
    { ngx_string("og:availability"), ngx_http_retarget_pf_in_stock },
    { ngx_string("product:retailer_item_id"), ngx_http_retarget_pf_sku },
    { ngx_null_string, 0 }
};


ngx_int_t
ngx_http_retarget_page_scan_init(ngx_http_retarget_page_scan_t *s)
{
    u_char      *p;
    size_t       size;
    ngx_uint_t   i;

    size = 0;

    for (i = 0; i < ngx_http_retarget_pa_count; i++) {
        size += ngx_http_retarget_page_attrs[i].size;
    }

    p = ngx_pnalloc(s->pool, size + NGX_HTTP_RETARGET_PAGE_TEXT_MAX);
    if (p == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < ngx_http_retarget_pa_count; i++) {
        s->attrs[i].data = p;
        s->attrs[i].size = ngx_http_retarget_page_attrs[i].size;
        p += s->attrs[i].size;
    }

    s->text.data = p;
    s->text.size = NGX_HTTP_RETARGET_PAGE_TEXT_MAX;

    return NGX_OK;
}


ngx_int_t
ngx_http_retarget_page_scan(ngx_http_retarget_page_scan_t *s, u_char *p,
    u_char *last)
{
    u_char  c, *q;

    while (p < last) {

        c = *p;

        switch (s->state) {

        case ngx_http_retarget_pt_data:
            q = ngx_http_retarget_page_find(p, last, '<');

            if (s->text_field) {
                ngx_http_retarget_page_buf_add(&s->text, p,
                                               (q ? q : last) - p);
            }

            if (q == NULL) {
                return NGX_OK;
            }

            p = q + 1;
            s->state = ngx_http_retarget_pt_tag_open;
            break;

        case ngx_http_retarget_pt_tag_open:
            if (c == '!') {
                p++;
                s->state = ngx_http_retarget_pt_markup;

            } else if (c == '/') {
                p++;
                s->state = ngx_http_retarget_pt_end_open;

            } else if (ngx_http_retarget_page_alpha(c)) {
                q = ngx_http_retarget_page_tag_fast(s, p, last, 0);

                if (q) {
                    p = q;
                    break;
                }

                ngx_http_retarget_page_tag_begin(s, 0);
                s->state = ngx_http_retarget_pt_tag_name;

            } else {
                /* a "<" in the text */
                if (s->text_field) {
                    ngx_http_retarget_page_buf_add(&s->text, (u_char *) "<",
                                                   1);
                }

                s->state = ngx_http_retarget_pt_data;
            }

            break;

        case ngx_http_retarget_pt_markup:
            if (c == '-') {
                p++;
                s->state = ngx_http_retarget_pt_markup_dash;

            } else {
                s->state = ngx_http_retarget_pt_bogus;
            }

            break;

        case ngx_http_retarget_pt_markup_dash:
            if (c == '-') {
                p++;
                /* "<!-->" and "<!--->" end at once, as in browsers */
                s->dashes = 2;
                s->state = ngx_http_retarget_pt_comment;

            } else {
                s->state = ngx_http_retarget_pt_bogus;
            }

            break;

        case ngx_http_retarget_pt_comment:
            p++;

            if (c == '-') {
                s->dashes++;

            } else if (c == '>' && s->dashes >= 2) {
                s->state = ngx_http_retarget_pt_data;

            } else {
                s->dashes = 0;
                q = ngx_http_retarget_page_find(p, last, '-');
                p = q ? q : last;
            }

            break;

        case ngx_http_retarget_pt_bogus:
            q = ngx_http_retarget_page_find(p, last, '>');

            if (q == NULL) {
                return NGX_OK;
            }

            p = q + 1;
            s->state = ngx_http_retarget_pt_data;
            break;

        case ngx_http_retarget_pt_end_open:
            if (ngx_http_retarget_page_alpha(c)) {
                q = ngx_http_retarget_page_tag_fast(s, p, last, 1);

                if (q) {
                    p = q;
                    break;
                }

                ngx_http_retarget_page_tag_begin(s, 1);
                s->state = ngx_http_retarget_pt_tag_name;

            } else if (c == '>') {
                p++;
                s->state = ngx_http_retarget_pt_data;

            } else {
                s->state = ngx_http_retarget_pt_bogus;
            }

            break;

        case ngx_http_retarget_pt_tag_name:
            while (!ngx_http_retarget_page_tag_end(c)) {
                ngx_http_retarget_page_name_add(s->tag, &s->tag_len, c);

                if (++p == last) {
                    return NGX_OK;
                }

                c = *p;
            }

            p++;

            if (ngx_http_retarget_page_space(c) || c == '/') {
                s->self_closing = (c == '/');
                s->state = ngx_http_retarget_pt_before_attr;

            } else if (c == '>') {
                ngx_http_retarget_page_tag_done(s);

            } else {
                ngx_http_retarget_page_name_add(s->tag, &s->tag_len, c);
            }

            break;

        case ngx_http_retarget_pt_before_attr:
            if (ngx_http_retarget_page_space(c) || c == '/') {
                p++;
                s->self_closing = (c == '/');

            } else if (c == '>') {
                p++;
                ngx_http_retarget_page_tag_done(s);

            } else {
                s->attr_len = 0;
                s->self_closing = 0;
                s->state = ngx_http_retarget_pt_attr_name;
                p++;
                ngx_http_retarget_page_name_add(s->attr, &s->attr_len, c);
            }

            break;

        case ngx_http_retarget_pt_attr_name:
            while (!ngx_http_retarget_page_attr_end(c)) {
                ngx_http_retarget_page_name_add(s->attr, &s->attr_len, c);

                if (++p == last) {
                    return NGX_OK;
                }

                c = *p;
            }

            if (ngx_http_retarget_page_space(c)) {
                p++;
                s->state = ngx_http_retarget_pt_after_attr_name;

            } else if (c == '/' || c == '>') {
                ngx_http_retarget_page_attr_flag(s);
                s->state = ngx_http_retarget_pt_before_attr;

            } else if (c == '=') {
                p++;
                ngx_http_retarget_page_value_begin(s);
                s->state = ngx_http_retarget_pt_before_value;

            } else {
                p++;
                ngx_http_retarget_page_name_add(s->attr, &s->attr_len, c);
            }

            break;

        case ngx_http_retarget_pt_after_attr_name:
            if (ngx_http_retarget_page_space(c)) {
                p++;

            } else if (c == '=') {
                p++;
                ngx_http_retarget_page_value_begin(s);
                s->state = ngx_http_retarget_pt_before_value;

            } else {
                ngx_http_retarget_page_attr_flag(s);
                s->state = ngx_http_retarget_pt_before_attr;
            }

            break;

        case ngx_http_retarget_pt_before_value:
            if (ngx_http_retarget_page_space(c)) {
                p++;

            } else if (c == '"') {
                p++;
                s->state = ngx_http_retarget_pt_value_dq;

            } else if (c == '\'') {
                p++;
                s->state = ngx_http_retarget_pt_value_sq;

            } else if (c == '>') {
                p++;
                s->cur = NULL;
                ngx_http_retarget_page_tag_done(s);

            } else {
                s->state = ngx_http_retarget_pt_value_unq;
            }

            break;

        case ngx_http_retarget_pt_value_dq:
        case ngx_http_retarget_pt_value_sq:
            q = ngx_http_retarget_page_find(p, last,
                            s->state == ngx_http_retarget_pt_value_dq
                            ? '"' : '\'');

            if (s->cur) {
                ngx_http_retarget_page_buf_add(s->cur, p, (q ? q : last) - p);
            }

            if (q == NULL) {
                return NGX_OK;
            }

            p = q + 1;
            s->cur = NULL;
            s->state = ngx_http_retarget_pt_before_attr;
            break;

        case ngx_http_retarget_pt_value_unq:
            q = p;

            while (!ngx_http_retarget_page_space(c) && c != '>') {
                if (++q == last) {
                    break;
                }

                c = *q;
            }

            if (s->cur && q > p) {
                ngx_http_retarget_page_buf_add(s->cur, p, q - p);
            }

            p = q;

            if (p == last) {
                return NGX_OK;
            }

            if (ngx_http_retarget_page_space(c)) {
                p++;
                s->cur = NULL;
                s->state = ngx_http_retarget_pt_before_attr;

            } else if (c == '>') {
                p++;
                s->cur = NULL;
                ngx_http_retarget_page_tag_done(s);

            } else {
                if (s->cur) {
                    ngx_http_retarget_page_buf_add(s->cur, p, 1);
                }

                p++;
            }

            break;

        default: /* ngx_http_retarget_pt_raw */
            p = ngx_http_retarget_page_raw(s, p, last);
            break;
        }
    }

    return NGX_OK;
}


/*
 * Most tags matter to nothing kept: an end tag's attributes never do,
 * and a start tag's only if it is meta, a raw text element or has
 * itemscope, itemprop or data-price-amount.  For a tag whole in this
 * buffer that does not, its end is found with the tokenizer's own rules
 * (a quote opens a value only right after "=" and white space; a quoted
 * value is skipped with memchr), nothing of its attributes is copied,
 * and the tag is then done as the tokenizer would do it: its name still
 * counts for the open itemscope elements.  p is at the name's first
 * letter; the end of the tag, or NULL: the tokenizer reads it (cut by the
 * buffer's end, or an attribute that matters).
 */

static u_char *
ngx_http_retarget_page_tag_fast(ngx_http_retarget_page_scan_t *s, u_char *p,
    u_char *last, ngx_uint_t end)
{
    u_char      c, *name, *a;
    size_t      len, i, n;
    ngx_uint_t  value;

    name = p;

    while (p < last && !ngx_http_retarget_page_tag_end(*p)) {
        p++;
    }

    if (p == last) {
        return NULL;
    }

    len = p - name;

    /* by the first letter: most tags are none of these */

    if (!end) {
        switch (name[0] | 0x20) {

        case 's':
            if (ngx_http_retarget_page_lit_ci(name, len, "script", 6)
                || ngx_http_retarget_page_lit_ci(name, len, "style", 5))
            {
                return NULL;
            }

            break;

        case 't':
            if (ngx_http_retarget_page_lit_ci(name, len, "textarea", 8)
                || ngx_http_retarget_page_lit_ci(name, len, "title", 5))
            {
                return NULL;
            }

            break;

        case 'm':
            if (ngx_http_retarget_page_lit_ci(name, len, "meta", 4)) {
                return NULL;
            }

            break;
        }
    }

    /* before an attribute's name (p at the delimiter after the tag name) */

    if (*p != '>') {
        p++;
    }

    value = 0;

    for ( ;; ) {

        if (p == last) {
            return NULL;
        }

        c = *p;

        if (value) {
            /* after "=": white space, then a quoted or unquoted value */

            if (ngx_http_retarget_page_space(c)) {
                p++;
                continue;
            }

            value = 0;

            if (c == '"' || c == '\'') {
                p = ngx_http_retarget_page_find(p + 1, last, c);

                if (p == NULL) {
                    return NULL;
                }

                p++;
                continue;
            }

            if (c == '>') {
                break;
            }

            while (p < last && !ngx_http_retarget_page_space(*p)
                   && *p != '>')
            {
                p++;
            }

            continue;
        }

        if (ngx_http_retarget_page_space(c) || c == '/') {
            p++;
            continue;
        }

        if (c == '>') {
            break;
        }

        /* a name: its first character whatever it is, as in the tokenizer */

        a = p++;

        while (p < last && !ngx_http_retarget_page_attr_end(*p)) {
            p++;
        }

        if (p == last) {
            return NULL;
        }

        /* by the first letter: class, id, href... are none of these */

        if (!end
            && ((*a | 0x20) == 'i' || (*a | 0x20) == 'd')
            && (ngx_http_retarget_page_lit_ci(a, p - a, "itemprop", 8)
                || ngx_http_retarget_page_lit_ci(a, p - a, "itemscope", 9)
                || ngx_http_retarget_page_lit_ci(a, p - a,
                                                 "data-price-amount", 17)))
        {
            return NULL;
        }

        /* after the name: white space, then "=" or another name */

        while (p < last && ngx_http_retarget_page_space(*p)) {
            p++;
        }

        if (p == last) {
            return NULL;
        }

        if (*p == '=') {
            p++;
            value = 1;
        }
    }

    /* p at the tag's ">" */

    if (s->nscopes == 0 && s->text_field == 0 && s->product == 0) {
        /* outside microdata such a tag changes nothing */
        s->state = ngx_http_retarget_pt_data;
        return p + 1;
    }

    ngx_http_retarget_page_tag_begin(s, end);

    /* as ngx_http_retarget_page_name_add() would, a byte at a time */

    n = ngx_min(len, NGX_HTTP_RETARGET_PAGE_NAME_LEN - 1);

    for (i = 0; i < n; i++) {
        s->tag[i] = ngx_http_retarget_page_lower[name[i]];
    }

    if (len > n) {
        s->tag[NGX_HTTP_RETARGET_PAGE_NAME_LEN - 1] = '\0';
        n = NGX_HTTP_RETARGET_PAGE_NAME_LEN;
    }

    s->tag_len = n;

    ngx_http_retarget_page_tag_done(s);

    return p + 1;
}


/* a name is the lowercase literal lit of n bytes, in any letter case */

static ngx_uint_t
ngx_http_retarget_page_lit_ci(u_char *p, size_t len, const char *lit,
    size_t n)
{
    size_t  i;

    if (len != n) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (ngx_http_retarget_page_lower[p[i]] != (u_char) lit[i]) {
            return 0;
        }
    }

    return 1;
}


static void
ngx_http_retarget_page_tag_begin(ngx_http_retarget_page_scan_t *s,
    ngx_uint_t end)
{
    ngx_uint_t  i;

    s->end_tag = end;
    s->self_closing = 0;
    s->tag_len = 0;
    s->cur = NULL;

    /* only the attributes the last tag had */

    for (i = 0; s->touched; i++, s->touched >>= 1) {
        if (s->touched & 1) {
            s->attrs[i].len = 0;
            s->attrs[i].present = 0;
            s->attrs[i].overflow = 0;
        }
    }
}


/* a lowercase name; a longer one than can be told apart ends in '\0' */

static void
ngx_http_retarget_page_name_add(u_char *name, size_t *len, u_char c)
{
    if (*len < NGX_HTTP_RETARGET_PAGE_NAME_LEN - 1) {
        name[(*len)++] = ngx_http_retarget_page_lower[c];
        return;
    }

    name[NGX_HTTP_RETARGET_PAGE_NAME_LEN - 1] = '\0';
    *len = NGX_HTTP_RETARGET_PAGE_NAME_LEN;
}


static ngx_http_retarget_page_buf_t *
ngx_http_retarget_page_attr(ngx_http_retarget_page_scan_t *s)
{
    ngx_uint_t  i, last;

    if (s->end_tag) {
        return NULL;
    }

    /* the candidates by length: most attributes (class, style...) none */

    switch (s->attr_len) {
    case 2:
        i = ngx_http_retarget_pa_id;
        last = i;
        break;
    case 3:
        i = ngx_http_retarget_pa_src;
        last = i;
        break;
    case 4:
        i = ngx_http_retarget_pa_type;
        last = ngx_http_retarget_pa_href;
        break;
    case 7:
        i = ngx_http_retarget_pa_content;
        last = i;
        break;
    case 8:
        i = ngx_http_retarget_pa_itemtype;
        last = ngx_http_retarget_pa_property;
        break;
    case 9:
        i = ngx_http_retarget_pa_itemscope;
        last = i;
        break;
    case 15:
        i = ngx_http_retarget_pa_price_type;
        last = i;
        break;
    case 17:
        i = ngx_http_retarget_pa_price_amount;
        last = i;
        break;
    default:
        return NULL;
    }

    for ( /* void */ ; i <= last; i++) {
        if (s->attr_len == ngx_http_retarget_page_attrs[i].name.len
            && s->attr[0] == ngx_http_retarget_page_attrs[i].name.data[0]
            && ngx_memcmp(s->attr, ngx_http_retarget_page_attrs[i].name.data,
                          s->attr_len)
               == 0)
        {
            /* HTML keeps the first of an attribute given twice */
            if (s->attrs[i].present) {
                return NULL;
            }

            s->touched |= (ngx_uint_t) 1 << i;
            return &s->attrs[i];
        }
    }

    return NULL;
}


static void
ngx_http_retarget_page_value_begin(ngx_http_retarget_page_scan_t *s)
{
    s->cur = ngx_http_retarget_page_attr(s);

    if (s->cur) {
        s->cur->present = 1;
    }
}


static void
ngx_http_retarget_page_attr_flag(ngx_http_retarget_page_scan_t *s)
{
    ngx_http_retarget_page_buf_t  *b;

    b = ngx_http_retarget_page_attr(s);

    if (b) {
        b->present = 1;
    }
}


static void
ngx_http_retarget_page_buf_add(ngx_http_retarget_page_buf_t *b, u_char *p,
    size_t n)
{
    if (b->overflow || n == 0) {
        return;
    }

    if (n > b->size - b->len) {
        b->overflow = 1;
        return;
    }

    ngx_memcpy(b->data + b->len, p, n);
    b->len += n;
}


static void
ngx_http_retarget_page_tag_done(ngx_http_retarget_page_scan_t *s)
{
    s->state = ngx_http_retarget_pt_data;
    s->cur = NULL;

    if (s->end_tag) {
        ngx_http_retarget_page_end_tag(s);
        return;
    }

    ngx_http_retarget_page_start_tag(s);
}


static ngx_uint_t
ngx_http_retarget_page_is_void(u_char *name, size_t len)
{
    /* area base br col embed hr img input link meta param source track wbr */

    switch (len) {
    case 2:
        return ngx_http_retarget_page_is_lit(name, len, "br")
               || ngx_http_retarget_page_is_lit(name, len, "hr");
    case 3:
        return ngx_http_retarget_page_is_lit(name, len, "col")
               || ngx_http_retarget_page_is_lit(name, len, "img")
               || ngx_http_retarget_page_is_lit(name, len, "wbr");
    case 4:
        return ngx_http_retarget_page_is_lit(name, len, "area")
               || ngx_http_retarget_page_is_lit(name, len, "base")
               || ngx_http_retarget_page_is_lit(name, len, "link")
               || ngx_http_retarget_page_is_lit(name, len, "meta");
    case 5:
        return ngx_http_retarget_page_is_lit(name, len, "embed")
               || ngx_http_retarget_page_is_lit(name, len, "input")
               || ngx_http_retarget_page_is_lit(name, len, "param")
               || ngx_http_retarget_page_is_lit(name, len, "track");
    case 6:
        return ngx_http_retarget_page_is_lit(name, len, "source");
    default:
        return 0;
    }
}


/* an attribute's value, trimmed, is s (any letter case) */

static ngx_uint_t
ngx_http_retarget_page_attr_is(ngx_http_retarget_page_buf_t *b,
    const char *s)
{
    u_char  *p, *last;
    size_t   n;

    if (!b->present || b->overflow) {
        return 0;
    }

    p = b->data;
    last = b->data + b->len;

    while (p < last && ngx_http_retarget_page_space(*p)) {
        p++;
    }

    while (last > p && ngx_http_retarget_page_space(last[-1])) {
        last--;
    }

    n = ngx_strlen(s);

    return (size_t) (last - p) == n
           && ngx_strncasecmp(p, (u_char *) s, n) == 0;
}


static void
ngx_http_retarget_page_start_tag(ngx_http_retarget_page_scan_t *s)
{
    ngx_uint_t  i;

    i = (s->tag[0] == 's' || s->tag[0] == 't') ? 0 : 4;

    for ( /* void */ ; i < 4; i++) {
        if (s->tag_len == ngx_http_retarget_page_raw_names[i].len
            && ngx_memcmp(s->tag, ngx_http_retarget_page_raw_names[i].data,
                          s->tag_len)
               == 0)
        {
            break;
        }
    }

    if (i == 4) {
        if (ngx_http_retarget_page_is_lit(s->tag, s->tag_len, "meta")) {
            ngx_http_retarget_page_meta(s);
        }

        if (s->nscopes || s->attrs[ngx_http_retarget_pa_itemscope].present
            || s->text_field)
        {
            ngx_http_retarget_page_prop(s, s->nscopes
                                           ? &s->scopes[s->nscopes - 1]
                                           : NULL,
                                        ngx_http_retarget_page_is_void(
                                            s->tag, s->tag_len));
        }

        return;
    }

    /* raw text up to the end tag */

    s->state = ngx_http_retarget_pt_raw;
    s->raw = i;
    s->raw_matched = 0;
    s->content = (i == 0) ? ngx_http_retarget_page_script(s)
                          : ngx_http_retarget_pc_skip;
    s->capture.len = 0;
    s->capture.overflow = 0;
}


/* what a script's text is for */

static ngx_uint_t
ngx_http_retarget_page_script(ngx_http_retarget_page_scan_t *s)
{
    ngx_http_retarget_page_buf_t  *type, *id;

    type = &s->attrs[ngx_http_retarget_pa_type];

    if (ngx_http_retarget_page_attr_is(type, "application/ld+json")) {
        return s->ld_found ? ngx_http_retarget_pc_skip
                           : ngx_http_retarget_pc_jsonld;
    }

    if (s->embed_done) {
        return ngx_http_retarget_pc_skip;
    }

    if (s->json_kind == NGX_HTTP_RETARGET_PAGE_JSON_ID) {
        id = &s->attrs[ngx_http_retarget_pa_id];

        if (ngx_http_retarget_page_attr_is(type, "application/json")
            && id->present && !id->overflow && id->len == s->json_name.len
            && ngx_memcmp(id->data, s->json_name.data, id->len) == 0)
        {
            return ngx_http_retarget_pc_embed;
        }

        return ngx_http_retarget_pc_skip;
    }

    if (s->json_kind == NGX_HTTP_RETARGET_PAGE_JSON_VAR
        && (!type->present || ngx_http_retarget_page_attr_is(type, "")
            || ngx_http_retarget_page_attr_is(type, "text/javascript")
            || ngx_http_retarget_page_attr_is(type, "application/javascript")
            || ngx_http_retarget_page_attr_is(type, "module")))
    {
        ngx_http_retarget_page_js_reset(s);
        return ngx_http_retarget_pc_js;
    }

    return ngx_http_retarget_pc_skip;
}


/* the text of a raw element, up to "</" its name and a delimiter */

static u_char *
ngx_http_retarget_page_raw(ngx_http_retarget_page_scan_t *s, u_char *p,
    u_char *last)
{
    u_char      c, *q;
    ngx_str_t  *name;
    ngx_uint_t  m, ok;

    name = &ngx_http_retarget_page_raw_names[s->raw];

    while (p < last) {

        m = s->raw_matched;

        if (m == 0) {
            q = ngx_http_retarget_page_find(p, last, '<');

            ngx_http_retarget_page_content(s, p, (q ? q : last) - p);

            if (q == NULL) {
                return last;
            }

            s->raw_held[0] = '<';
            s->raw_matched = 1;
            p = q + 1;
            continue;
        }

        c = *p;

        if (m == 1) {
            ok = (c == '/');

        } else if (m < 2 + name->len) {
            ok = (ngx_tolower(c) == name->data[m - 2]);

        } else {
            if (ngx_http_retarget_page_space(c) || c == '/' || c == '>') {
                /* the end tag: its attributes, if any, up to ">" */
                s->raw_matched = 0;
                ngx_http_retarget_page_content_end(s);

                ngx_http_retarget_page_tag_begin(s, 1);
                ngx_memcpy(s->tag, name->data, name->len);
                s->tag_len = name->len;
                s->state = ngx_http_retarget_pt_before_attr;

                return p;
            }

            ok = 0;
        }

        if (ok) {
            s->raw_held[m] = c;
            s->raw_matched++;
            p++;
            continue;
        }

        /* not the end tag: what was held is text; c is read again */
        s->raw_matched = 0;
        ngx_http_retarget_page_content(s, s->raw_held, m);
    }

    return p;
}


static void
ngx_http_retarget_page_content(ngx_http_retarget_page_scan_t *s, u_char *p,
    size_t n)
{
    switch (s->content) {

    case ngx_http_retarget_pc_jsonld:
    case ngx_http_retarget_pc_embed:
        ngx_http_retarget_page_capture(s, p, n);
        break;

    case ngx_http_retarget_pc_js:
        ngx_http_retarget_page_js(s, p, n);
        break;

    default:
        break;
    }
}


static void
ngx_http_retarget_page_content_end(ngx_http_retarget_page_scan_t *s)
{
    switch (s->content) {

    case ngx_http_retarget_pc_jsonld:
        if (!s->capture.overflow) {
            ngx_http_retarget_page_ld(s, s->capture.data, s->capture.len);
        }

        break;

    case ngx_http_retarget_pc_embed:
        if (!s->capture.overflow) {
            ngx_http_retarget_page_embedded(s);
        }

        /* the first script of that id, whatever it held */
        s->embed_done = 1;
        break;

    default:
        /* an object literal not closed within its script is none */
        break;
    }

    s->content = ngx_http_retarget_pc_skip;
    s->capture.len = 0;
    s->capture.overflow = 0;
}


/* into the capture buffer, which grows to at most the bound */

static void
ngx_http_retarget_page_capture(ngx_http_retarget_page_scan_t *s, u_char *p,
    size_t n)
{
    u_char                        *data;
    size_t                         size;
    ngx_http_retarget_page_buf_t  *b;

    b = &s->capture;

    if (b->overflow || n == 0) {
        return;
    }

    if (n > NGX_HTTP_RETARGET_PAGE_JSON_MAX - b->len) {
        b->overflow = 1;
        return;
    }

    if (n > b->size - b->len) {
        size = b->size ? b->size : 4096;

        while (size < b->len + n) {
            size *= 2;
        }

        if (size > NGX_HTTP_RETARGET_PAGE_JSON_MAX) {
            size = NGX_HTTP_RETARGET_PAGE_JSON_MAX;
        }

        data = ngx_pnalloc(s->pool, size);
        if (data == NULL) {
            b->overflow = 1;
            return;
        }

        if (b->len) {
            ngx_memcpy(data, b->data, b->len);
        }

        b->data = data;
        b->size = size;
    }

    ngx_memcpy(b->data + b->len, p, n);
    b->len += n;
}


/* the capture is the embedded object: it keeps the buffer */

static void
ngx_http_retarget_page_embedded(ngx_http_retarget_page_scan_t *s)
{
    u_char  *p, *last;

    p = s->capture.data;
    last = p + s->capture.len;

    while (p < last && ngx_http_retarget_page_space(*p)) {
        p++;
    }

    while (last > p && ngx_http_retarget_page_space(last[-1])) {
        last--;
    }

    if (p == last) {
        return;
    }

    s->embedded.data = p;
    s->embedded.len = last - p;
    s->embed_done = 1;

    s->capture.data = NULL;
    s->capture.size = 0;
    s->capture.len = 0;
}


static void
ngx_http_retarget_page_js_reset(ngx_http_retarget_page_scan_t *s)
{
    s->js = ngx_http_retarget_pj_look;
    s->js_depth = 0;
    s->js_quote = 0;
    s->js_escape = 0;
    s->js_in_word = 0;
    s->js_word_long = 0;
    s->js_dot = 0;
    s->js_window = 0;
    s->js_after_dot = 0;
    s->js_dot_ok = 0;
    s->js_word_len = 0;
}


#define ngx_http_retarget_page_ident(c)                                      \
    (ngx_http_retarget_page_alpha(c) || ((c) >= '0' && (c) <= '9')         \
     || (c) == '_' || (c) == '$' || (c) >= 0x80)


/*
 * An inline script, for NAME "=" "{": NAME at the start of a word, not
 * after a "." unless the word before is window, self or globalThis.
 */

static void
ngx_http_retarget_page_js(ngx_http_retarget_page_scan_t *s, u_char *p,
    size_t n)
{
    u_char  c, *last;

    last = p + n;

    while (p < last) {

        c = *p;

        switch (s->js) {

        case ngx_http_retarget_pj_object:
            p++;
            ngx_http_retarget_page_capture(s, &c, 1);

            if (s->capture.overflow) {
                s->embed_done = 1;
                s->content = ngx_http_retarget_pc_skip;
                return;
            }

            if (s->js_quote) {
                if (s->js_escape) {
                    s->js_escape = 0;

                } else if (c == '\\') {
                    s->js_escape = 1;

                } else if (c == s->js_quote) {
                    s->js_quote = 0;
                }

            } else if (c == '"' || c == '\'' || c == '`') {
                s->js_quote = c;

            } else if (c == '{') {
                s->js_depth++;

            } else if (c == '}' && --s->js_depth == 0) {
                ngx_http_retarget_page_embedded(s);
                s->embed_done = 1;
                s->content = ngx_http_retarget_pc_skip;
                return;
            }

            continue;

        case ngx_http_retarget_pj_eq:
            if (ngx_http_retarget_page_space(c)) {
                p++;

            } else if (c == '=') {
                p++;
                s->js = ngx_http_retarget_pj_value;

            } else {
                s->js = ngx_http_retarget_pj_look;
            }

            continue;

        case ngx_http_retarget_pj_value:
            if (ngx_http_retarget_page_space(c)) {
                p++;

            } else if (c == '{') {
                p++;
                s->js = ngx_http_retarget_pj_object;
                s->js_depth = 1;
                s->js_quote = 0;
                s->js_escape = 0;
                s->capture.len = 0;
                s->capture.overflow = 0;
                ngx_http_retarget_page_capture(s, &c, 1);

            } else {
                /* "==", or another value */
                s->js = ngx_http_retarget_pj_look;
            }

            continue;

        default: /* ngx_http_retarget_pj_look */
            break;
        }

        if (ngx_http_retarget_page_ident(c)) {
            p++;

            if (!s->js_in_word) {
                s->js_in_word = 1;
                s->js_word_len = 0;
                s->js_word_long = 0;
                s->js_after_dot = s->js_dot;
                s->js_dot_ok = s->js_dot && s->js_window;
                s->js_dot = 0;
                s->js_window = 0;
            }

            if (s->js_word_len < NGX_HTTP_RETARGET_PAGE_VAR_MAX) {
                s->js_word[s->js_word_len++] = c;

            } else {
                s->js_word_long = 1;
            }

            continue;
        }

        if (s->js_in_word) {
            s->js_in_word = 0;

            if (!s->js_word_long && s->js_word_len == s->json_name.len
                && ngx_memcmp(s->js_word, s->json_name.data, s->js_word_len)
                   == 0
                && (!s->js_after_dot || s->js_dot_ok))
            {
                /* c is read again, after the name */
                s->js = ngx_http_retarget_pj_eq;
                continue;
            }

            s->js_window = !s->js_after_dot && !s->js_word_long
                           && (ngx_http_retarget_page_is(s->js_word,
                                                         s->js_word_len,
                                                         "window")
                               || ngx_http_retarget_page_is(s->js_word,
                                                            s->js_word_len,
                                                            "self")
                               || (s->js_word_len == 10
                                   && ngx_memcmp(s->js_word, "globalThis",
                                                 10) == 0));
        }

        p++;

        if (c == '.') {
            s->js_dot = 1;

        } else if (!ngx_http_retarget_page_space(c)) {
            s->js_dot = 0;
            s->js_window = 0;
        }
    }
}


/* OpenGraph: <meta property=... content=...> (or name=) */

static void
ngx_http_retarget_page_meta(ngx_http_retarget_page_scan_t *s)
{
    ngx_uint_t                     i;
    ngx_http_retarget_page_buf_t  *key, *content;

    content = &s->attrs[ngx_http_retarget_pa_content];

    if (!content->present || content->overflow) {
        return;
    }

    key = &s->attrs[ngx_http_retarget_pa_property];

    if (!key->present) {
        key = &s->attrs[ngx_http_retarget_pa_name];
    }

    if (!key->present || key->overflow) {
        return;
    }

    for (i = 0; ngx_http_retarget_page_og[i].name.len; i++) {
        if (key->len == ngx_http_retarget_page_og[i].name.len
            && ngx_strncasecmp(key->data,
                               ngx_http_retarget_page_og[i].name.data,
                               key->len)
               == 0)
        {
            ngx_http_retarget_page_set(s, ngx_http_retarget_ps_og,
                                       ngx_http_retarget_page_og[i].field,
                                       content->data, content->len);
            return;
        }
    }
}


/*
 * A start tag other than raw text, while microdata is followed: the
 * depths of the open itemscope elements and of the element whose text
 * is read, its itemprop, its own itemscope.
 */

static void
ngx_http_retarget_page_prop(ngx_http_retarget_page_scan_t *s,
    ngx_http_retarget_page_scope_t *top, ngx_uint_t is_void)
{
    ngx_uint_t                       i, kind;
    ngx_http_retarget_page_buf_t    *b;
    ngx_http_retarget_page_scope_t  *sc;

    if (!is_void) {
        for (i = 0; i < s->nscopes; i++) {
            if (s->scopes[i].name_len == s->tag_len
                && ngx_memcmp(s->scopes[i].name, s->tag, s->tag_len) == 0)
            {
                s->scopes[i].depth++;
            }
        }

        if (s->text_field && s->text_el.name_len == s->tag_len
            && ngx_memcmp(s->text_el.name, s->tag, s->tag_len) == 0)
        {
            s->text_el.depth++;
        }
    }

    if (s->gave_up) {
        return;
    }

    if (top && s->attrs[ngx_http_retarget_pa_itemprop].present) {
        ngx_http_retarget_page_prop_value(s, top, is_void);
    }

    /* Magento: <span data-price-amount="45" data-price-type="finalPrice"> */

    b = &s->attrs[ngx_http_retarget_pa_price_amount];

    if (s->product && b->present && !b->overflow && s->md_amount.len == 0
        && (!s->attrs[ngx_http_retarget_pa_price_type].present
            || ngx_http_retarget_page_attr_is(
                   &s->attrs[ngx_http_retarget_pa_price_type], "finalPrice")))
    {
        (void) ngx_http_retarget_page_clean(s, ngx_http_retarget_pf_price,
                                            b->data, b->len, &s->md_amount);
    }

    if (!s->attrs[ngx_http_retarget_pa_itemscope].present || is_void) {
        return;
    }

    if (s->nscopes == NGX_HTTP_RETARGET_PAGE_SCOPES) {
        /* deeper than followed: the owner of a property is not known */
        s->gave_up = 1;
        return;
    }

    b = &s->attrs[ngx_http_retarget_pa_itemtype];
    kind = (b->present && !b->overflow)
           ? ngx_http_retarget_page_type_kind(b->data, b->len)
           : NGX_HTTP_RETARGET_PAGE_OTHER;

    if (kind == NGX_HTTP_RETARGET_PAGE_PRODUCT
        && (s->product || s->product_done))
    {
        /* only the first product: a related one is not the page's */
        kind = NGX_HTTP_RETARGET_PAGE_OTHER;
    }

    sc = &s->scopes[s->nscopes++];
    ngx_memcpy(sc->name, s->tag, s->tag_len);
    sc->name_len = s->tag_len;
    sc->depth = 1;
    sc->kind = kind;

    if (kind == NGX_HTTP_RETARGET_PAGE_PRODUCT) {
        s->product = s->nscopes;
    }
}


/*
 * An itemprop of the first product, or of the offer right inside it:
 * its value from content=, else href= or src= as the element says, else
 * its text up to its end tag.  Each name of the itemprop is a property.
 */

static void
ngx_http_retarget_page_prop_value(ngx_http_retarget_page_scan_t *s,
    ngx_http_retarget_page_scope_t *top, ngx_uint_t is_void)
{
    u_char                        *p, *last, *start;
    ngx_int_t                      field;
    ngx_uint_t                     kind;
    ngx_http_retarget_page_buf_t  *prop, *b;

    if (s->product && top == &s->scopes[s->product - 1]) {
        kind = NGX_HTTP_RETARGET_PAGE_PRODUCT;

    } else if (s->product && s->nscopes >= 2
               && top->kind == NGX_HTTP_RETARGET_PAGE_OFFER
               && s->product == s->nscopes - 1)
    {
        kind = NGX_HTTP_RETARGET_PAGE_OFFER;

    } else {
        return;
    }

    prop = &s->attrs[ngx_http_retarget_pa_itemprop];

    if (prop->overflow || s->attrs[ngx_http_retarget_pa_itemscope].present) {
        /* the value of an itemprop with itemscope is an item */
        return;
    }

    b = &s->attrs[ngx_http_retarget_pa_content];

    if (!b->present) {
        if (ngx_http_retarget_page_is_lit(s->tag, s->tag_len, "a")
            || ngx_http_retarget_page_is_lit(s->tag, s->tag_len, "link")
            || ngx_http_retarget_page_is_lit(s->tag, s->tag_len, "area"))
        {
            b = &s->attrs[ngx_http_retarget_pa_href];

        } else if (ngx_http_retarget_page_is_lit(s->tag, s->tag_len, "img")
                   || ngx_http_retarget_page_is_lit(s->tag, s->tag_len,
                                                    "source")
                   || ngx_http_retarget_page_is_lit(s->tag, s->tag_len,
                                                    "video")
                   || ngx_http_retarget_page_is_lit(s->tag, s->tag_len,
                                                    "embed"))
        {
            b = &s->attrs[ngx_http_retarget_pa_src];

        } else {
            b = NULL;
        }
    }

    p = prop->data;
    last = prop->data + prop->len;

    while (p < last) {

        while (p < last && ngx_http_retarget_page_space(*p)) {
            p++;
        }

        start = p;

        while (p < last && !ngx_http_retarget_page_space(*p)) {
            p++;
        }

        if (p == start) {
            break;
        }

        field = ngx_http_retarget_page_prop_field(start, p - start, kind);

        if (field == NGX_ERROR) {
            continue;
        }

        if (b != NULL) {
            if (b->present && !b->overflow) {
                if (field == ngx_http_retarget_pf_count) {
                    if (s->md_pid.len == 0) {
                        (void) ngx_http_retarget_page_clean(s,
                                   ngx_http_retarget_pf_sku, b->data, b->len,
                                   &s->md_pid);
                    }

                } else {
                    ngx_http_retarget_page_set(s,
                        ngx_http_retarget_ps_microdata, field, b->data,
                        b->len);
                }
            }

            continue;
        }

        if (is_void || s->text_field
            || field == ngx_http_retarget_pf_count)
        {
            continue;
        }

        /* the element's text, up to its end tag */
        ngx_memcpy(s->text_el.name, s->tag, s->tag_len);
        s->text_el.name_len = s->tag_len;
        s->text_el.depth = 1;
        s->text_field = field + 1;
        s->text.len = 0;
        s->text.overflow = 0;
    }
}


/* NGX_ERROR: not one we take; ngx_http_retarget_pf_count: productID */

static ngx_int_t
ngx_http_retarget_page_prop_field(u_char *p, size_t len, ngx_uint_t kind)
{
    static struct {
        const char  *name;
        ngx_int_t    field;
        ngx_uint_t   offer;
    } props[] = {
        { "name", ngx_http_retarget_pf_name, 0 },
        { "sku", ngx_http_retarget_pf_sku, 0 },
        { "productID", ngx_http_retarget_pf_count, 0 },
        { "image", ngx_http_retarget_pf_image, 0 },
        { "url", ngx_http_retarget_pf_url, 0 },
        { "price", ngx_http_retarget_pf_price, 1 },
        { "lowPrice", ngx_http_retarget_pf_price, 1 },
        { "priceCurrency", ngx_http_retarget_pf_currency, 1 },
        { "availability", ngx_http_retarget_pf_in_stock, 1 },
        { NULL, 0, 0 }
    };

    ngx_uint_t  i;

    for (i = 0; props[i].name; i++) {
        if (ngx_http_retarget_page_is(p, len, props[i].name)
            && (kind == NGX_HTTP_RETARGET_PAGE_PRODUCT || props[i].offer))
        {
            return props[i].field;
        }
    }

    return NGX_ERROR;
}


/* the first type of an itemtype, by its last path segment */

static ngx_uint_t
ngx_http_retarget_page_type_kind(u_char *p, size_t len)
{
    u_char  *last, *start;

    last = p + len;

    while (p < last && ngx_http_retarget_page_space(*p)) {
        p++;
    }

    start = p;

    while (p < last && !ngx_http_retarget_page_space(*p)) {
        if (*p++ == '/') {
            start = p;
        }
    }

    len = p - start;

    if (ngx_http_retarget_page_is_lit(start, len, "Product")
        || ngx_http_retarget_page_is_lit(start, len, "IndividualProduct")
        || ngx_http_retarget_page_is_lit(start, len, "ProductModel")
        || ngx_http_retarget_page_is_lit(start, len, "ProductGroup"))
    {
        return NGX_HTTP_RETARGET_PAGE_PRODUCT;
    }

    if (ngx_http_retarget_page_is_lit(start, len, "Offer")
        || ngx_http_retarget_page_is_lit(start, len, "AggregateOffer"))
    {
        return NGX_HTTP_RETARGET_PAGE_OFFER;
    }

    return NGX_HTTP_RETARGET_PAGE_OTHER;
}


static void
ngx_http_retarget_page_end_tag(ngx_http_retarget_page_scan_t *s)
{
    ngx_uint_t  i;

    if (s->text_field && s->text_el.name_len == s->tag_len
        && ngx_memcmp(s->text_el.name, s->tag, s->tag_len) == 0
        && --s->text_el.depth == 0)
    {
        if (!s->text.overflow) {
            ngx_http_retarget_page_set(s, ngx_http_retarget_ps_microdata,
                                       s->text_field - 1, s->text.data,
                                       s->text.len);
        }

        s->text_field = 0;
    }

    for (i = 0; i < s->nscopes; i++) {
        if (s->scopes[i].name_len == s->tag_len
            && ngx_memcmp(s->scopes[i].name, s->tag, s->tag_len) == 0
            && s->scopes[i].depth)
        {
            s->scopes[i].depth--;
        }
    }

    /* the outermost closed scope closes those inside it */

    for (i = 0; i < s->nscopes; i++) {
        if (s->scopes[i].depth == 0) {
            s->nscopes = i;
            break;
        }
    }

    if (s->product > s->nscopes) {
        s->product = 0;
        s->product_done = 1;
    }
}


void
ngx_http_retarget_page_value(ngx_http_retarget_page_scan_t *s,
    ngx_uint_t field, ngx_str_t *v)
{
    ngx_uint_t  i;

    for (i = 0; i < ngx_http_retarget_ps_count; i++) {
        *v = s->v[i][field];

        if (i == ngx_http_retarget_ps_microdata && v->len == 0) {
            if (field == ngx_http_retarget_pf_sku) {
                *v = s->md_pid;

            } else if (field == ngx_http_retarget_pf_price) {
                *v = s->md_amount;
            }
        }

        if (v->len) {
            return;
        }
    }
}
