
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The "retarget_event" directive, and the values of an event: evaluated
 * after the response, decoded, and checked.  The checks are pure
 * functions of a value (fuzz/event_conf_fuzz.c): a value that fails one
 * rejects the event, which is then only counted as "rejected".
 */


#include "ngx_http_retarget_event.h"
#include "ngx_http_retarget_store.h"
#include "ngx_http_retarget_url.h"


static ngx_int_t ngx_http_retarget_event_url(ngx_str_t *v);
static ngx_int_t ngx_http_retarget_event_page(ngx_conf_t *cf,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_http_retarget_event_conf_t *ec,
    ngx_str_t *raw);
static ngx_uint_t ngx_http_retarget_bidi(uint32_t cp);


/*
 * Variables a visitor sets in the request: a "catalog" event must not
 * take a product's name, price, image or url from them (names ending in
 * "_" are prefixes)
 */
static ngx_str_t  ngx_http_retarget_request_vars[] = {
    ngx_string("arg_"),
    ngx_string("args"),
    ngx_string("query_string"),
    ngx_string("cookie_"),
    ngx_string("http_"),
    ngx_string("request"),
    ngx_string("request_uri"),
    ngx_string("request_body"),
    ngx_string("request_body_file"),
    ngx_null_string
};


static ngx_str_t  ngx_http_retarget_param_names[] = {
    ngx_string("sku="),
    ngx_string("qty="),
    ngx_string("price="),
    ngx_string("name="),
    ngx_string("image="),
    ngx_string("url="),
    ngx_string("order="),
    ngx_string("value="),
    ngx_string("user="),
    ngx_string("if=")
};


/*
 * "retarget_event product" without sku=: what is not given comes from
 * the page (ngx_http_retarget_page.c); the page is the shop's own
 * response, so these are fine in a "catalog" event
 */
static ngx_str_t  ngx_http_retarget_page_params[] = {
    ngx_string("$retarget_page_sku"),
    ngx_null_string,
    ngx_string("$retarget_page_price"),
    ngx_string("$retarget_page_name"),
    ngx_string("$retarget_page_image"),
    ngx_string("$retarget_page_url")
};


/* the same, as keys of the stream's JSON */
const char  *ngx_http_retarget_json_keys[] = {
    "sku", "qty", "price", "name", "image", "url", "order", "value", "user"
};


static struct {
    ngx_str_t                      name;
    ngx_http_retarget_ev_type_e    type;
    ngx_str_t                      counter;
} ngx_http_retarget_ev_types[] = {
    { ngx_string("product"), ngx_http_retarget_ev_product,
      ngx_string("product_views") },
    { ngx_string("cart_add"), ngx_http_retarget_ev_cart_add,
      ngx_string("cart_adds") },
    { ngx_string("cart_remove"), ngx_http_retarget_ev_cart_remove,
      ngx_string("cart_removes") },
    { ngx_string("cart_clear"), ngx_http_retarget_ev_cart_clear,
      ngx_string("cart_clears") },
    { ngx_string("checkout"), ngx_http_retarget_ev_checkout,
      ngx_string("checkouts") },
    { ngx_string("purchase"), ngx_http_retarget_ev_purchase,
      ngx_string("purchases") },
    { ngx_string("identify"), ngx_http_retarget_ev_identify,
      ngx_string("identifies") },
    { ngx_null_string, ngx_http_retarget_ev_custom, ngx_null_string }
};


/*
 * retarget_event type [sku=V] [qty=V] ... [if=V] [catalog]
 *
 * "catalog" says that the event's name, price, image and url are the
 * shop's own (upstream response headers, a map of the shop's catalogue,
 * literals): only such an event writes the product data every visitor's
 * reminders show, <prefix>p:SKU.  Its values must not name a variable
 * of the request (checked here, at nginx -t).
 */

char *
ngx_http_retarget_event_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_retarget_loc_conf_t *rlcf = conf;

    u_char                            *p;
    ngx_str_t                         *value, v, var;
    ngx_str_t                          raw[ngx_http_retarget_p_count];
    ngx_uint_t                         i, k;
    ngx_http_retarget_event_conf_t    *ec;
    ngx_http_compile_complex_value_t   ccv;

    if (rlcf->events == NULL) {
        rlcf->events = ngx_array_create(cf->pool, 2,
                                       sizeof(ngx_http_retarget_event_conf_t));
        if (rlcf->events == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    ec = ngx_array_push(rlcf->events);
    if (ec == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(ec, sizeof(ngx_http_retarget_event_conf_t));

    value = cf->args->elts;
    ec->name = value[1];

    for (k = 0; ngx_http_retarget_ev_types[k].name.len; k++) {
        if (ngx_http_retarget_ev_types[k].name.len == ec->name.len
            && ngx_strncmp(ngx_http_retarget_ev_types[k].name.data,
                           ec->name.data, ec->name.len) == 0)
        {
            break;
        }
    }

    ec->type = ngx_http_retarget_ev_types[k].type;
    ec->counter = ngx_http_retarget_ev_types[k].counter;

    if (ec->type == ngx_http_retarget_ev_custom) {
        /* a free-form name: reaches the stream and its own counter */

        if (ec->name.len == 0 || ec->name.len > 32) {
            goto invalid_type;
        }

        for (p = ec->name.data; p < ec->name.data + ec->name.len; p++) {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
                  || *p == '_'))
            {
                goto invalid_type;
            }
        }

        ec->counter.len = ngx_http_retarget_c_events.len + ec->name.len;
        ec->counter.data = ngx_pnalloc(cf->pool, ec->counter.len);
        if (ec->counter.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_sprintf(ec->counter.data, "%V%V", &ngx_http_retarget_c_events,
                    &ec->name);
    }

    ngx_memzero(raw, sizeof(raw));

    for (i = 2; i < cf->args->nelts; i++) {

        if (value[i].len == sizeof("catalog") - 1
            && ngx_strncmp(value[i].data, "catalog", value[i].len) == 0)
        {
            if (ec->catalog) {
                goto invalid_param;
            }

            ec->catalog = 1;
            continue;
        }

        for (k = 0; k < ngx_http_retarget_p_count; k++) {
            if (ngx_strncmp(value[i].data,
                            ngx_http_retarget_param_names[k].data,
                            ngx_http_retarget_param_names[k].len)
                == 0)
            {
                break;
            }
        }

        if (k == ngx_http_retarget_p_count || ec->params[k] != NULL) {
            goto invalid_param;
        }

        v.data = value[i].data + ngx_http_retarget_param_names[k].len;
        v.len = value[i].len - ngx_http_retarget_param_names[k].len;

        raw[k] = v;

        ec->params[k] = ngx_palloc(cf->pool,
                                   sizeof(ngx_http_complex_value_t));
        if (ec->params[k] == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

        ccv.cf = cf;
        ccv.value = &v;
        ccv.complex_value = ec->params[k];

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_http_retarget_event_page(cf, rlcf, ec, raw) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                   "retarget event \"%V\": type %d, counter \"%V\"",
                   &ec->name, (int) ec->type, &ec->counter);

    if ((ec->type == ngx_http_retarget_ev_product
         || ec->type == ngx_http_retarget_ev_cart_add
         || ec->type == ngx_http_retarget_ev_cart_remove)
        && ec->params[ngx_http_retarget_p_sku] == NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V %V\" requires \"sku=\"",
                           &cmd->name, &ec->name);
        return NGX_CONF_ERROR;
    }

    if (ec->type == ngx_http_retarget_ev_identify
        && ec->params[ngx_http_retarget_p_user] == NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V identify\" requires \"user=\"", &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (ec->catalog
        && ec->type != ngx_http_retarget_ev_product
        && ec->type != ngx_http_retarget_ev_cart_add)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"catalog\" is only for \"product\" and "
                           "\"cart_add\" in \"%V\"", &cmd->name);
        return NGX_CONF_ERROR;
    }

    for (k = ngx_http_retarget_p_price;
         ec->catalog && k <= ngx_http_retarget_p_url;
         k++)
    {
        if (ngx_http_retarget_catalog_value(&raw[k], &var) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V%V\" of a \"catalog\" event takes "
                               "\"$%V\" from the request: the product data "
                               "of every visitor must come from the shop "
                               "(an upstream response header, a map of the "
                               "catalogue)", &ngx_http_retarget_param_names[k],
                               &raw[k], &var);
            return NGX_CONF_ERROR;
        }
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                   "retarget event \"%V\": catalog %ui", &ec->name,
                   ec->catalog);

    return NGX_CONF_OK;

invalid_param:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid or duplicate parameter \"%V\" in \"%V\"",
                       &value[i], &cmd->name);

    return NGX_CONF_ERROR;

invalid_type:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid event type \"%V\" in \"%V\": a known type "
                       "or up to 32 of [a-z0-9_]", &ec->name, &cmd->name);

    return NGX_CONF_ERROR;
}


/*
 * A product event without sku= takes its values from the page; and a
 * location whose events name $retarget_page_* has its pages scanned.
 */

static ngx_int_t
ngx_http_retarget_event_page(ngx_conf_t *cf,
    ngx_http_retarget_loc_conf_t *rlcf, ngx_http_retarget_event_conf_t *ec,
    ngx_str_t *raw)
{
    ngx_uint_t                         k, page;
    ngx_http_compile_complex_value_t   ccv;

    page = (ec->type == ngx_http_retarget_ev_product
            && ec->params[ngx_http_retarget_p_sku] == NULL);

    for (k = 0; page && k <= ngx_http_retarget_p_url; k++) {
        if (ec->params[k] != NULL || k == ngx_http_retarget_p_qty) {
            continue;
        }

        raw[k] = ngx_http_retarget_page_params[k];

        ec->params[k] = ngx_palloc(cf->pool,
                                   sizeof(ngx_http_complex_value_t));
        if (ec->params[k] == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

        ccv.cf = cf;
        ccv.value = &raw[k];
        ccv.complex_value = ec->params[k];

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    for (k = 0; k < ngx_http_retarget_p_count; k++) {
        if (raw[k].len >= sizeof("retarget_page_") - 1
            && ngx_strlcasestrn(raw[k].data, raw[k].data + raw[k].len,
                                (u_char *) "retarget_page_",
                                sizeof("retarget_page_") - 2)
               != NULL)
        {
            rlcf->page.events = 1;
        }
    }

    return NGX_OK;
}


/*
 * Evaluates and checks the values: NGX_DECLINED when "if=" is empty or
 * "0", NGX_ERROR when a value is invalid (the event is not written).
 */

ngx_int_t
ngx_http_retarget_event_values(ngx_http_request_t *r,
    ngx_http_retarget_event_t *ev)
{
    u_char     *dst, *src;
    ngx_str_t   raw;
    ngx_uint_t  k;

    ev->qty = 1;

    /* the condition first: values of an event that did not happen are
     * not checked, nor counted as rejected */

    if (ev->conf->params[ngx_http_retarget_p_if] != NULL) {
        if (ngx_http_complex_value(r, ev->conf->params[ngx_http_retarget_p_if],
                                   &raw)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (raw.len == 0 || (raw.len == 1 && raw.data[0] == '0')) {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget event \"%V\": \"if=\" is \"%V\", "
                           "not logged", &ev->conf->name, &raw);
            return NGX_DECLINED;
        }
    }

    for (k = 0; k < ngx_http_retarget_p_if; k++) {

        if (ev->conf->params[k] == NULL) {
            continue;
        }

        if (ngx_http_complex_value(r, ev->conf->params[k], &raw) != NGX_OK) {
            return NGX_ERROR;
        }

        /* values usually come from query arguments: decode them */

        dst = ngx_pnalloc(r->pool, raw.len);
        if (dst == NULL) {
            return NGX_ERROR;
        }

        ev->v[k].data = dst;

        for (src = raw.data; src < raw.data + raw.len; src++) {
            *dst++ = (*src == '+') ? ' ' : *src;
        }

        src = ev->v[k].data;
        dst = ev->v[k].data;
        ngx_unescape_uri(&dst, &src, raw.len, 0);
        ev->v[k].len = dst - ev->v[k].data;

        if (ev->v[k].len == 0) {
            /* an empty value is an absent one */
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget event \"%V\": %V empty, absent",
                           &ev->conf->name,
                           &ngx_http_retarget_param_names[k]);
            continue;
        }

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget event \"%V\": %V\"%V\"",
                       &ev->conf->name, &ngx_http_retarget_param_names[k],
                       &ev->v[k]);

        if (ngx_http_retarget_event_check(k, &ev->v[k], ev) != NGX_OK) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "retarget: event \"%V\" rejected: invalid "
                          "\"%V\" value", &ev->conf->name,
                          &ngx_http_retarget_param_names[k]);
            return NGX_ERROR;
        }
    }

    if ((ev->conf->type == ngx_http_retarget_ev_product
         || ev->conf->type == ngx_http_retarget_ev_cart_add
         || ev->conf->type == ngx_http_retarget_ev_cart_remove)
        && ev->v[ngx_http_retarget_p_sku].len == 0)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "retarget: event \"%V\" rejected: no sku",
                      &ev->conf->name);
        return NGX_ERROR;
    }

    if (ev->conf->type == ngx_http_retarget_ev_identify
        && ev->v[ngx_http_retarget_p_user].len == 0)
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget event \"%V\" rejected: no user",
                       &ev->conf->name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * One value, not empty: NGX_OK if it may be stored.  A quantity and an
 * amount are kept in ev as numbers.
 */

ngx_int_t
ngx_http_retarget_event_check(ngx_uint_t param, ngx_str_t *v,
    ngx_http_retarget_event_t *ev)
{
    int64_t  n;

    switch (param) {

    case ngx_http_retarget_p_sku:
    case ngx_http_retarget_p_order:
        return ngx_http_retarget_printable(v, NGX_HTTP_RETARGET_SKU_MAX, 0);

    case ngx_http_retarget_p_user:
        return ngx_http_retarget_printable(v, 128, 0);

    case ngx_http_retarget_p_qty:
        n = ngx_http_retarget_parse_number(v);
        if (n < 1 || n > 9999) {
            return NGX_ERROR;
        }

        ev->qty = n;
        return NGX_OK;

    case ngx_http_retarget_p_price:
    case ngx_http_retarget_p_value:
        return ngx_http_retarget_parse_amount(v, &ev->cents);

    case ngx_http_retarget_p_name:
        return ngx_http_retarget_printable(v, NGX_HTTP_RETARGET_NAME_MAX, 1);

    default: /* image, url */
        return ngx_http_retarget_event_url(v);
    }
}


/* a path on this site or an http(s) URL: never javascript: */

static ngx_int_t
ngx_http_retarget_event_url(ngx_str_t *v)
{
    if (ngx_http_retarget_printable(v, NGX_HTTP_RETARGET_URL_MAX, 0)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_retarget_same_site_path(v)
        || (v->len > 8 && ngx_strncasecmp(v->data,
                                          (u_char *) "https://", 8) == 0)
        || (v->len > 7 && ngx_strncasecmp(v->data,
                                          (u_char *) "http://", 7) == 0))
    {
        return NGX_OK;
    }

    return NGX_ERROR;
}


/*
 * A value of a "catalog" event's configuration, "...$name..." or
 * "...${name}...": NGX_ERROR when it names a variable of the request,
 * in var.
 */

ngx_int_t
ngx_http_retarget_catalog_value(ngx_str_t *v, ngx_str_t *var)
{
    u_char      *p, *last, *start;
    ngx_str_t   *rv;
    ngx_uint_t   brace;

    p = v->data;
    last = v->data + v->len;

    while (p < last) {

        if (*p++ != '$') {
            continue;
        }

        brace = (p < last && *p == '{');
        p += brace;
        start = p;

        while (p < last
               && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                   || (*p >= '0' && *p <= '9') || *p == '_'))
        {
            p++;
        }

        var->data = start;
        var->len = p - start;

        for (rv = ngx_http_retarget_request_vars; rv->len; rv++) {

            if (rv->data[rv->len - 1] == '_'
                ? (var->len >= rv->len
                   && ngx_strncasecmp(var->data, rv->data, rv->len) == 0)
                : (var->len == rv->len
                   && ngx_strncasecmp(var->data, rv->data, rv->len) == 0))
            {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


/*
 * No control characters, no bidi controls (they would reorder the text
 * around a name in every page and e-mail that shows it), UTF-8 only:
 * what every stored value must be
 */

ngx_int_t
ngx_http_retarget_printable(ngx_str_t *v, size_t max, ngx_uint_t spaces)
{
    u_char    *p, *last;
    size_t     i, n;
    uint32_t   cp;

    if (v->len == 0 || v->len > max) {
        return NGX_ERROR;
    }

    p = v->data;
    last = v->data + v->len;

    while (p < last) {

        if (*p >= 0x80) {
            /*
             * ngx_utf8_decode() takes any byte from 0x80 as a
             * continuation: "\xea\xea\xac" would pass, and a browser
             * would read a U+FFFD and what follows.  Each continuation
             * byte must be 10xxxxxx.
             */

            n = (*p >= 0xf0) ? 3 : (*p >= 0xe0) ? 2 : (*p >= 0xc2) ? 1 : 0;

            if (n == 0 || (size_t) (last - p) <= n) {
                return NGX_ERROR;
            }

            for (i = 1; i <= n; i++) {
                if ((p[i] & 0xc0) != 0x80) {
                    return NGX_ERROR;
                }
            }

            /* invalid UTF-8, a surrogate, a C1 control character */
            cp = ngx_utf8_decode(&p, last - p);

            if (cp > 0x10ffff || (cp >= 0x80 && cp <= 0x9f)
                || (cp >= 0xd800 && cp <= 0xdfff)
                || ngx_http_retarget_bidi(cp))
            {
                return NGX_ERROR;
            }

            continue;
        }

        if (*p < 0x20 || *p == 0x7f || (*p == ' ' && !spaces)) {
            return NGX_ERROR;
        }

        p++;
    }

    return NGX_OK;
}


/* U+061C, U+200E-200F, U+202A-202E, U+2066-2069: bidi formatting */

static ngx_uint_t
ngx_http_retarget_bidi(uint32_t cp)
{
    return cp == 0x061c
           || cp == 0x200e || cp == 0x200f
           || (cp >= 0x202a && cp <= 0x202e)
           || (cp >= 0x2066 && cp <= 0x2069);
}
