
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The JSON-LD of a product page: the text of a <script
 * type="application/ld+json"> that ngx_http_retarget_page_scan.c
 * captured, parsed with jansson: the first schema.org Product, at the
 * top, in an array, in "@graph" or in "mainEntity", its offers, price
 * specifications and image; and the worker's cache of what a text gave.
 */


#include "ngx_http_retarget_page_ld.h"
#include "ngx_http_retarget_page_clean.h"

#include <jansson.h>


#define NGX_HTTP_RETARGET_PAGE_LD_DEPTH  4


typedef struct ngx_http_retarget_page_ld_entry_s
    ngx_http_retarget_page_ld_entry_t;


static void ngx_http_retarget_page_ld_cache_hit(
    ngx_http_retarget_page_scan_t *s, ngx_http_retarget_page_ld_entry_t *e);
static void ngx_http_retarget_page_ld_cache_add(
    ngx_http_retarget_page_scan_t *s, u_char *p, size_t len, uint32_t hash,
    ngx_uint_t parsed);
static void ngx_http_retarget_page_ld_cache_evict(void);
static ngx_int_t ngx_http_retarget_page_ld_parse(
    ngx_http_retarget_page_scan_t *s, u_char *p, size_t len);
static json_t *ngx_http_retarget_page_ld_find(json_t *v, ngx_uint_t depth);
static ngx_uint_t ngx_http_retarget_page_ld_is(json_t *o, const char *type);
static void ngx_http_retarget_page_ld_product(ngx_http_retarget_page_scan_t *s,
    json_t *p);
static void ngx_http_retarget_page_ld_image(ngx_http_retarget_page_scan_t *s,
    json_t *v, ngx_uint_t depth);
static void ngx_http_retarget_page_ld_offer(ngx_http_retarget_page_scan_t *s,
    json_t *o);
static void ngx_http_retarget_page_ld_spec(ngx_http_retarget_page_scan_t *s,
    json_t *v);
static void ngx_http_retarget_page_ld_set(ngx_http_retarget_page_scan_t *s,
    ngx_uint_t field, json_t *v);


/*
 * The JSON-LD results of a worker, by the exact text of the script: a
 * shop serves the same product page again and again, and jansson's parse
 * of its JSON-LD was half of the scan.  An entry holds a copy of the
 * text (a hit is a full memcmp against it, so a hash collision can never
 * give another page's data) and what the parse gave: whether it parsed,
 * whether it held a Product, and the cleaned JSON-LD values.  A price
 * that changes changes the text, hence the key.  Bounded in entries and
 * bytes, least recently used evicted; one malloc() per distinct script.
 */
#ifndef NGX_HTTP_RETARGET_PAGE_LD_CACHE_ENTRIES
#define NGX_HTTP_RETARGET_PAGE_LD_CACHE_ENTRIES  256
#endif
#ifndef NGX_HTTP_RETARGET_PAGE_LD_CACHE_SIZE
#define NGX_HTTP_RETARGET_PAGE_LD_CACHE_SIZE     (1024 * 1024)
#endif
/* a power of two */
#define NGX_HTTP_RETARGET_PAGE_LD_BUCKETS  512


struct ngx_http_retarget_page_ld_entry_s {
    ngx_queue_t                         lru;      /* most recent first */
    ngx_http_retarget_page_ld_entry_t  *next;     /* in its bucket */
    uint32_t                            hash;
    size_t                              len;      /* of the text */
    size_t                              size;     /* of the allocation */
    unsigned                            parsed:1;
    unsigned                            found:1;
    size_t                              vlen[ngx_http_retarget_pf_count];
    u_char                             *values;   /* after the text */
    u_char                              text[1];
};


static struct {
    ngx_http_retarget_page_ld_entry_t
                           *buckets[NGX_HTTP_RETARGET_PAGE_LD_BUCKETS];
    ngx_queue_t                         lru;
    ngx_uint_t                          entries;
    size_t                              size;
} ngx_http_retarget_page_ld_cache;


/*
 * A JSON-LD script: the first Product in it.  Called only while no
 * script has given a Product (ngx_http_retarget_page_script()), so the
 * JSON-LD values are all empty here, and what a script gives depends on
 * its text alone: the worker's cache answers for a text seen before.
 */

void
ngx_http_retarget_page_ld(ngx_http_retarget_page_scan_t *s, u_char *p,
    size_t len)
{
    uint32_t                            hash;
    ngx_uint_t                          nomem, scripts;
    ngx_http_retarget_page_ld_entry_t  *e;

    /* a site's graph without a product (Yoast's WebPage) is not parsed */
    if (len == 0 || memmem(p, len, "Product", 7) == NULL) {
        return;
    }

    hash = ngx_murmur_hash2(p, len);

    for (e = ngx_http_retarget_page_ld_cache.buckets
                 [hash & (NGX_HTTP_RETARGET_PAGE_LD_BUCKETS - 1)];
         e;
         e = e->next)
    {
        if (e->hash == hash && e->len == len
            && ngx_memcmp(e->text, p, len) == 0)
        {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, s->pool->log, 0,
                           "retarget page: JSON-LD cache hit, %uz bytes",
                           len);

            ngx_http_retarget_page_ld_cache_hit(s, e);
            return;
        }
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, s->pool->log, 0,
                   "retarget page: JSON-LD cache miss, %uz bytes", len);

    nomem = ngx_http_retarget_page_clean_nomem;
    scripts = s->ld_scripts;

    if (ngx_http_retarget_page_ld_parse(s, p, len) != NGX_OK
        || nomem != ngx_http_retarget_page_clean_nomem)
    {
        /* out of memory: not what the text gives, not kept */
        return;
    }

    ngx_http_retarget_page_ld_cache_add(s, p, len, hash,
                                        s->ld_scripts != scripts);
}


static void
ngx_http_retarget_page_ld_cache_hit(ngx_http_retarget_page_scan_t *s,
    ngx_http_retarget_page_ld_entry_t *e)
{
    u_char      *v, *buf;
    size_t       n;
    ngx_uint_t   i;

    /* the most recently used first */
    ngx_queue_remove(&e->lru);
    ngx_queue_insert_head(&ngx_http_retarget_page_ld_cache.lru, &e->lru);

    if (e->parsed) {
        s->ld_scripts++;
    }

    if (!e->found) {
        return;
    }

    s->ld_found = 1;

    n = 0;
    for (i = 0; i < ngx_http_retarget_pf_count; i++) {
        n += e->vlen[i];
    }

    if (n == 0) {
        return;
    }

    /* the values live in the request's pool, as a parse would leave them */
    buf = ngx_pnalloc(s->pool, n);
    if (buf == NULL) {
        return;
    }

    ngx_memcpy(buf, e->values, n);
    v = buf;

    for (i = 0; i < ngx_http_retarget_pf_count; i++) {
        s->v[ngx_http_retarget_ps_jsonld][i].data = v;
        s->v[ngx_http_retarget_ps_jsonld][i].len = e->vlen[i];
        v += e->vlen[i];
    }
}


static void
ngx_http_retarget_page_ld_cache_add(ngx_http_retarget_page_scan_t *s,
    u_char *p, size_t len, uint32_t hash, ngx_uint_t parsed)
{
    u_char                             *v;
    size_t                              size;
    ngx_uint_t                          i, b;
    ngx_str_t                          *f;
    ngx_http_retarget_page_ld_entry_t  *e;

    if (ngx_http_retarget_page_ld_cache.lru.next == NULL) {
        ngx_queue_init(&ngx_http_retarget_page_ld_cache.lru);
    }

    f = s->v[ngx_http_retarget_ps_jsonld];

    size = offsetof(ngx_http_retarget_page_ld_entry_t, text) + len;
    for (i = 0; i < ngx_http_retarget_pf_count; i++) {
        size += f[i].len;
    }

    if (size > NGX_HTTP_RETARGET_PAGE_LD_CACHE_SIZE) {
        return;
    }

    while (ngx_http_retarget_page_ld_cache.entries
               >= NGX_HTTP_RETARGET_PAGE_LD_CACHE_ENTRIES
           || ngx_http_retarget_page_ld_cache.size + size
               > NGX_HTTP_RETARGET_PAGE_LD_CACHE_SIZE)
    {
        ngx_http_retarget_page_ld_cache_evict();
    }

    /* malloc(), not a pool: the entry outlives the request */
    e = malloc(size);
    if (e == NULL) {
        return;
    }

    e->hash = hash;
    e->len = len;
    e->size = size;
    e->parsed = parsed ? 1 : 0;
    e->found = s->ld_found;
    e->values = e->text + len;
    ngx_memcpy(e->text, p, len);

    v = e->values;
    for (i = 0; i < ngx_http_retarget_pf_count; i++) {
        e->vlen[i] = f[i].len;

        if (f[i].len) {
            v = ngx_cpymem(v, f[i].data, f[i].len);
        }
    }

    b = hash & (NGX_HTTP_RETARGET_PAGE_LD_BUCKETS - 1);
    e->next = ngx_http_retarget_page_ld_cache.buckets[b];
    ngx_http_retarget_page_ld_cache.buckets[b] = e;

    ngx_queue_insert_head(&ngx_http_retarget_page_ld_cache.lru, &e->lru);
    ngx_http_retarget_page_ld_cache.entries++;
    ngx_http_retarget_page_ld_cache.size += size;
}


/* every entry goes (fuzz/page_fuzz.c: a parse from a cold cache) */

void
ngx_http_retarget_page_ld_cache_flush(void)
{
    if (ngx_http_retarget_page_ld_cache.lru.next == NULL) {
        return;
    }

    while (ngx_http_retarget_page_ld_cache.entries) {
        ngx_http_retarget_page_ld_cache_evict();
    }
}


/* the least recently used entry goes */

static void
ngx_http_retarget_page_ld_cache_evict(void)
{
    ngx_queue_t                         *q;
    ngx_http_retarget_page_ld_entry_t   *e, **pe;

    q = ngx_queue_last(&ngx_http_retarget_page_ld_cache.lru);
    e = ngx_queue_data(q, ngx_http_retarget_page_ld_entry_t, lru);

    ngx_queue_remove(q);

    for (pe = &ngx_http_retarget_page_ld_cache.buckets
                  [e->hash & (NGX_HTTP_RETARGET_PAGE_LD_BUCKETS - 1)];
         *pe != e;
         pe = &(*pe)->next)
    {
        /* void */
    }

    *pe = e->next;

    ngx_http_retarget_page_ld_cache.entries--;
    ngx_http_retarget_page_ld_cache.size -= e->size;

    free(e);
}


/* jansson's parse; NGX_ERROR: out of memory, the script not read */

static ngx_int_t
ngx_http_retarget_page_ld_parse(ngx_http_retarget_page_scan_t *s, u_char *p,
    size_t len)
{
    json_t           *root, *product;
    json_error_t      err;

    /*
     * Parsed once per distinct script and worker: the cache above keeps
     * what it gave
     */

    root = json_loadb((const char *) p, len, 0, &err);

    if (root == NULL) {
        /* out of memory: not remembered as "no product" */
        return json_error_code(&err) == json_error_out_of_memory
               ? NGX_ERROR : NGX_OK;
    }

    s->ld_scripts++;

    product = ngx_http_retarget_page_ld_find(root, 0);

    if (product != NULL) {
        s->ld_found = 1;
        ngx_http_retarget_page_ld_product(s, product);
    }

    json_decref(root);

    return NGX_OK;
}


static json_t *
ngx_http_retarget_page_ld_find(json_t *v, ngx_uint_t depth)
{
    size_t   i;
    json_t  *found;

    if (depth > NGX_HTTP_RETARGET_PAGE_LD_DEPTH) {
        return NULL;
    }

    if (json_is_array(v)) {
        for (i = 0; i < json_array_size(v); i++) {
            found = ngx_http_retarget_page_ld_find(json_array_get(v, i),
                                                   depth + 1);
            if (found) {
                return found;
            }
        }

        return NULL;
    }

    if (!json_is_object(v)) {
        return NULL;
    }

    if (ngx_http_retarget_page_ld_is(v, "Product")
        || ngx_http_retarget_page_ld_is(v, "IndividualProduct")
        || ngx_http_retarget_page_ld_is(v, "ProductModel")
        || ngx_http_retarget_page_ld_is(v, "ProductGroup"))
    {
        return v;
    }

    found = ngx_http_retarget_page_ld_find(json_object_get(v, "@graph"),
                                           depth + 1);
    if (found) {
        return found;
    }

    return ngx_http_retarget_page_ld_find(json_object_get(v, "mainEntity"),
                                          depth + 1);
}


/* "@type" is the type, or an array holding it; "schema:" or a URL too */

static ngx_uint_t
ngx_http_retarget_page_ld_is(json_t *o, const char *type)
{
    size_t       i, n, len;
    json_t      *t, *e;
    const char  *v, *slash;

    t = json_object_get(o, "@type");
    n = json_is_array(t) ? json_array_size(t) : 1;
    len = ngx_strlen(type);

    for (i = 0; i < n; i++) {
        e = json_is_array(t) ? json_array_get(t, i) : t;

        if (!json_is_string(e)) {
            continue;
        }

        v = json_string_value(e);
        slash = strrchr(v, '/');
        v = slash ? slash + 1 : v;

        if (ngx_strncmp(v, "schema:", 7) == 0) {
            v += 7;
        }

        if (ngx_strlen(v) == len && ngx_strncmp(v, type, len) == 0) {
            return 1;
        }
    }

    return 0;
}


static void
ngx_http_retarget_page_ld_product(ngx_http_retarget_page_scan_t *s,
    json_t *p)
{
    size_t   i;
    json_t  *offers, *url;

    ngx_http_retarget_page_ld_set(s, ngx_http_retarget_pf_name,
                                  json_object_get(p, "name"));

    /* WooCommerce without a sku gives the post id as sku */
    ngx_http_retarget_page_ld_set(s, ngx_http_retarget_pf_sku,
                                  json_object_get(p, "sku"));
    ngx_http_retarget_page_ld_set(s, ngx_http_retarget_pf_sku,
                                  json_object_get(p, "productID"));
    ngx_http_retarget_page_ld_set(s, ngx_http_retarget_pf_sku,
                                  json_object_get(p, "productGroupID"));

    url = json_object_get(p, "url");
    ngx_http_retarget_page_ld_set(s, ngx_http_retarget_pf_url,
                                  json_is_array(url) ? json_array_get(url, 0)
                                                     : url);

    ngx_http_retarget_page_ld_image(s, json_object_get(p, "image"), 0);

    offers = json_object_get(p, "offers");

    if (json_is_array(offers)) {
        for (i = 0; i < json_array_size(offers); i++) {
            ngx_http_retarget_page_ld_offer(s, json_array_get(offers, i));
        }

    } else {
        ngx_http_retarget_page_ld_offer(s, offers);
    }
}


/* a URL, an array (the first), an ImageObject (url, contentUrl) */

static void
ngx_http_retarget_page_ld_image(ngx_http_retarget_page_scan_t *s, json_t *v,
    ngx_uint_t depth)
{
    if (depth > 2) {
        return;
    }

    if (json_is_array(v)) {
        ngx_http_retarget_page_ld_image(s, json_array_get(v, 0), depth + 1);
        return;
    }

    if (json_is_object(v)) {
        ngx_http_retarget_page_ld_set(s, ngx_http_retarget_pf_image,
                                      json_object_get(v, "url"));
        ngx_http_retarget_page_ld_set(s, ngx_http_retarget_pf_image,
                                      json_object_get(v, "contentUrl"));
        return;
    }

    ngx_http_retarget_page_ld_set(s, ngx_http_retarget_pf_image, v);
}


/*
 * An Offer: price, else priceSpecification; an AggregateOffer: lowPrice
 * first.  The first offer with a value gives it.
 */

static void
ngx_http_retarget_page_ld_offer(ngx_http_retarget_page_scan_t *s, json_t *o)
{
    if (!json_is_object(o)) {
        return;
    }

    if (ngx_http_retarget_page_ld_is(o, "AggregateOffer")) {
        ngx_http_retarget_page_ld_set(s, ngx_http_retarget_pf_price,
                                      json_object_get(o, "lowPrice"));
    }

    ngx_http_retarget_page_ld_set(s, ngx_http_retarget_pf_price,
                                  json_object_get(o, "price"));
    ngx_http_retarget_page_ld_set(s, ngx_http_retarget_pf_currency,
                                  json_object_get(o, "priceCurrency"));

    ngx_http_retarget_page_ld_spec(s, json_object_get(o,
                                                      "priceSpecification"));

    ngx_http_retarget_page_ld_set(s, ngx_http_retarget_pf_in_stock,
                                  json_object_get(o, "availability"));

    /* PrestaShop gives the product's address only here */
    ngx_http_retarget_page_ld_set(s, ngx_http_retarget_pf_url,
                                  json_object_get(o, "url"));
}


/*
 * priceSpecification, an object or an array: the price that is paid,
 * one without a priceType or with one other than a strikethrough or
 * list price; only if there is none, the first.
 */

static void
ngx_http_retarget_page_ld_spec(ngx_http_retarget_page_scan_t *s, json_t *v)
{
    size_t       i, n;
    json_t      *e, *t, *first;
    const char  *type;

    n = json_is_array(v) ? json_array_size(v) : 1;
    first = NULL;

    for (i = 0; i < n; i++) {
        e = json_is_array(v) ? json_array_get(v, i) : v;

        if (!json_is_object(e) || json_object_get(e, "price") == NULL) {
            continue;
        }

        if (first == NULL) {
            first = e;
        }

        t = json_object_get(e, "priceType");
        type = json_is_string(t) ? json_string_value(t) : "";

        if (strstr(type, "Strikethrough") == NULL
            && strstr(type, "ListPrice") == NULL
            && strstr(type, "SRP") == NULL
            && strstr(type, "MSRP") == NULL)
        {
            first = e;
            break;
        }
    }

    if (first == NULL) {
        return;
    }

    ngx_http_retarget_page_ld_set(s, ngx_http_retarget_pf_price,
                                  json_object_get(first, "price"));
    ngx_http_retarget_page_ld_set(s, ngx_http_retarget_pf_currency,
                                  json_object_get(first, "priceCurrency"));
}


/* a string, or a number as written */

static void
ngx_http_retarget_page_ld_set(ngx_http_retarget_page_scan_t *s,
    ngx_uint_t field, json_t *v)
{
    u_char  buf[64], *p;

    if (v == NULL || s->v[ngx_http_retarget_ps_jsonld][field].len) {
        return;
    }

    if (json_is_string(v)) {
        ngx_http_retarget_page_set(s, ngx_http_retarget_ps_jsonld, field,
                                   (u_char *) json_string_value(v),
                                   json_string_length(v));
        return;
    }

    if (json_is_integer(v)) {
        p = ngx_sprintf(buf, "%L", (int64_t) json_integer_value(v));

    } else if (json_is_real(v)) {
        p = buf + snprintf((char *) buf, sizeof(buf), "%.15g",
                           json_real_value(v));

    } else {
        return;
    }

    ngx_http_retarget_page_set(s, ngx_http_retarget_ps_jsonld, field, buf,
                               p - buf);
}
