
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The streaming scanner of product pages: the product's sku, name,
 * price, currency, image, url and availability from schema.org JSON-LD,
 * microdata and OpenGraph tags, and the text of one JSON object the page
 * embeds, read from the HTML as it passes, buffer by buffer.  No nginx
 * request, only a pool, so that it can be fuzzed on its own
 * (fuzz/page_fuzz.c).
 */


#ifndef _NGX_HTTP_RETARGET_PAGE_SCAN_H_INCLUDED_
#define _NGX_HTTP_RETARGET_PAGE_SCAN_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* the most kept of one JSON-LD script, or of the embedded object */
#define NGX_HTTP_RETARGET_PAGE_JSON_MAX   65536
/* the most kept of an attribute value (content=, href=, src=) */
#define NGX_HTTP_RETARGET_PAGE_ATTR_MAX   2048
/* the most kept of an element's text (a microdata value) */
#define NGX_HTTP_RETARGET_PAGE_TEXT_MAX   1024
/* open itemscope elements followed */
#define NGX_HTTP_RETARGET_PAGE_SCOPES     8
/* the longest tag or attribute name told apart */
#define NGX_HTTP_RETARGET_PAGE_NAME_LEN   24
/* the longest var= name */
#define NGX_HTTP_RETARGET_PAGE_VAR_MAX    64


/* retarget_page_json */
#define NGX_HTTP_RETARGET_PAGE_JSON_NONE  0
#define NGX_HTTP_RETARGET_PAGE_JSON_ID    1
#define NGX_HTTP_RETARGET_PAGE_JSON_VAR   2


typedef enum {
    ngx_http_retarget_pf_sku = 0,
    ngx_http_retarget_pf_name,
    ngx_http_retarget_pf_price,
    ngx_http_retarget_pf_currency,
    ngx_http_retarget_pf_image,
    ngx_http_retarget_pf_url,
    ngx_http_retarget_pf_in_stock,
    ngx_http_retarget_pf_count
} ngx_http_retarget_page_field_e;


/* the sources, in the order their values are preferred */
typedef enum {
    ngx_http_retarget_ps_jsonld = 0,
    ngx_http_retarget_ps_microdata,
    ngx_http_retarget_ps_og,
    ngx_http_retarget_ps_count
} ngx_http_retarget_page_source_e;


/* the attributes of a tag that are kept */
typedef enum {
    ngx_http_retarget_pa_type = 0,
    ngx_http_retarget_pa_id,
    ngx_http_retarget_pa_itemtype,
    ngx_http_retarget_pa_itemprop,
    ngx_http_retarget_pa_itemscope,
    ngx_http_retarget_pa_property,
    ngx_http_retarget_pa_name,
    ngx_http_retarget_pa_price_type,
    ngx_http_retarget_pa_price_amount,
    ngx_http_retarget_pa_content,
    ngx_http_retarget_pa_href,
    ngx_http_retarget_pa_src,
    ngx_http_retarget_pa_count
} ngx_http_retarget_page_attr_e;


typedef struct {
    u_char                         *data;
    size_t                          len;
    size_t                          size;
    unsigned                        present:1;
    unsigned                        overflow:1;
} ngx_http_retarget_page_buf_t;


typedef struct {
    u_char                          name[NGX_HTTP_RETARGET_PAGE_NAME_LEN];
    size_t                          name_len;
    ngx_uint_t                      depth;    /* open elements of the name */
    ngx_uint_t                      kind;
} ngx_http_retarget_page_scope_t;


typedef struct {
    ngx_pool_t                     *pool;

    /* configuration: retarget_page_json */
    ngx_uint_t                      json_kind;
    ngx_str_t                       json_name;

    /* what was found: per source, per field (len 0: none) */
    ngx_str_t                       v[ngx_http_retarget_ps_count]
                                     [ngx_http_retarget_pf_count];
    ngx_str_t                       md_pid;       /* microdata productID */
    ngx_str_t                       md_amount;    /* data-price-amount */
    ngx_str_t                       embedded;     /* complete, or empty */
    ngx_uint_t                      ld_scripts;   /* parsed */

    /* the tokenizer */
    ngx_uint_t                      state;
    ngx_uint_t                      after;       /* state after a tag */
    ngx_uint_t                      dashes;      /* in a comment */
    unsigned                        end_tag:1;
    unsigned                        self_closing:1;
    unsigned                        gave_up:1;   /* microdata: too deep */
    unsigned                        product_done:1;
    unsigned                        ld_found:1;
    unsigned                        embed_done:1;
    u_char                          tag[NGX_HTTP_RETARGET_PAGE_NAME_LEN];
    size_t                          tag_len;
    u_char                          attr[NGX_HTTP_RETARGET_PAGE_NAME_LEN];
    size_t                          attr_len;
    ngx_http_retarget_page_buf_t   *cur;         /* the value being read */
    ngx_uint_t                      touched;     /* attrs of this tag, bits */
    ngx_http_retarget_page_buf_t    attrs[ngx_http_retarget_pa_count];

    /* raw text (script, style, textarea, title) up to its end tag */
    ngx_uint_t                      raw;         /* index of the element */
    ngx_uint_t                      raw_matched;
    u_char                          raw_held[16];
    ngx_uint_t                      content;     /* what the text is for */

    /* a JSON-LD script or the embedded object being captured */
    ngx_http_retarget_page_buf_t    capture;

    /* the inline script matcher of var=NAME */
    ngx_uint_t                      js;
    ngx_uint_t                      js_depth;
    u_char                          js_quote;
    unsigned                        js_escape:1;
    unsigned                        js_in_word:1;
    unsigned                        js_word_long:1;
    unsigned                        js_dot:1;
    unsigned                        js_window:1;
    unsigned                        js_after_dot:1;
    unsigned                        js_dot_ok:1;
    u_char                          js_word[NGX_HTTP_RETARGET_PAGE_VAR_MAX];
    size_t                          js_word_len;

    /* microdata: the open itemscope elements, an element's text */
    ngx_http_retarget_page_scope_t  scopes[NGX_HTTP_RETARGET_PAGE_SCOPES];
    ngx_uint_t                      nscopes;
    ngx_uint_t                      product;     /* its scope + 1, or 0 */
    ngx_http_retarget_page_scope_t  text_el;
    ngx_uint_t                      text_field;  /* + 1, or 0: none */
    ngx_uint_t                      text_source;
    ngx_http_retarget_page_buf_t    text;
} ngx_http_retarget_page_scan_t;


/* json_kind, json_name and pool set, the rest zeroed */
ngx_int_t ngx_http_retarget_page_scan_init(ngx_http_retarget_page_scan_t *s);
ngx_int_t ngx_http_retarget_page_scan(ngx_http_retarget_page_scan_t *s,
    u_char *p, u_char *last);
/* the value of a field, the first source that has one; empty: none */
void ngx_http_retarget_page_value(ngx_http_retarget_page_scan_t *s,
    ngx_uint_t field, ngx_str_t *v);


#endif /* _NGX_HTTP_RETARGET_PAGE_SCAN_H_INCLUDED_ */
