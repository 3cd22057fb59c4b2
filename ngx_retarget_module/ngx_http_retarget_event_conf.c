
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The "retarget_event" directive, and the values of an event: evaluated
 * after the response and checked, taken as the shop sent them (only a
 * value that is one query argument, $arg_NAME, is URL-decoded).  The
 * checks are pure functions of a value (fuzz/event_conf_fuzz.c).  A value
 * the event cannot exist without (the sku of a cart line, a quantity, a
 * purchase's order id, the user of an identify) that fails its check
 * rejects the event; any other value that fails is dropped and the event
 * goes on without it.  Each rejection and each dropped value is counted
 * as "rejected:REASON" and logged at "notice", once a minute per reason
 * and worker.
 */


#include "ngx_http_retarget_event.h"
#include "ngx_http_retarget_extract.h"
#include "ngx_http_retarget_counters.h"
#include "ngx_http_retarget_escape.h"
#include "ngx_http_retarget_store.h"
#include "ngx_http_retarget_url.h"

#include <openssl/evp.h>


/*
 * A reason is logged at most once in this many seconds, per worker; the
 * reasons (rejected:REASON but the "rejected:") are fewer than REASONS
 * and at most REASON_LEN bytes long.
 */
#define NGX_HTTP_RETARGET_REASON_LOG_PERIOD  60
#define NGX_HTTP_RETARGET_REASONS            32
#define NGX_HTTP_RETARGET_REASON_LEN         32


static ngx_uint_t ngx_http_retarget_arg_only(ngx_str_t *v);
static ngx_int_t ngx_http_retarget_arg_decode(ngx_pool_t *pool,
    ngx_str_t *raw, ngx_str_t *out);
static ngx_int_t ngx_http_retarget_event_minor(ngx_http_request_t *r,
    ngx_http_retarget_event_t *ev);
static ngx_int_t ngx_http_retarget_event_value(ngx_http_request_t *r,
    ngx_http_retarget_event_t *ev, ngx_uint_t k);
static ngx_uint_t ngx_http_retarget_needed(ngx_http_retarget_event_t *ev,
    ngx_uint_t k);
static ngx_int_t ngx_http_retarget_cart_params(ngx_conf_t *cf,
    ngx_command_t *cmd, ngx_http_retarget_event_conf_t *ec);
static ngx_int_t ngx_http_retarget_delta(ngx_str_t *v, int64_t *delta);
static ngx_int_t ngx_http_retarget_cart_sync_raw(ngx_http_request_t *r,
    ngx_http_retarget_event_t *ev);
static void ngx_http_retarget_value_failed(ngx_http_request_t *r,
    ngx_http_retarget_event_t *ev, ngx_uint_t k, ngx_uint_t missing,
    ngx_uint_t reject, ngx_str_t *value);
static ngx_int_t ngx_http_retarget_user_normalise(ngx_pool_t *pool,
    ngx_str_t *v);
static ngx_int_t ngx_http_retarget_user_hash(ngx_pool_t *pool, ngx_str_t *v);
static ngx_int_t ngx_http_retarget_event_url(ngx_str_t *v);
static ngx_int_t ngx_http_retarget_catalog_later(ngx_conf_t *cf, ngx_uint_t k,
    ngx_str_t *raw);
static ngx_uint_t ngx_http_retarget_next_var(u_char **pp, u_char *last,
    ngx_str_t *var);
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
    ngx_string("currency="),
    ngx_string("in_stock="),
    ngx_string("order="),
    ngx_string("value="),
    ngx_string("user="),
    ngx_string("line="),
    ngx_string("delta="),
    ngx_string("items="),
    ngx_string("minor="),
    ngx_string("if=")
};


/*
 * The reasons a value fails, as fields of the daily counters: "bad_P"
 * when the value of P= fails its check, "no_P" when a value the event
 * needs is empty.  Whether the event is rejected or only loses the value
 * depends on the event (ngx_http_retarget_needed()); both are counted.
 */
static ngx_str_t  ngx_http_retarget_bad[ngx_http_retarget_p_count] = {
    [ngx_http_retarget_p_sku] = ngx_string("rejected:bad_sku"),
    [ngx_http_retarget_p_qty] = ngx_string("rejected:bad_qty"),
    [ngx_http_retarget_p_price] = ngx_string("rejected:bad_price"),
    [ngx_http_retarget_p_name] = ngx_string("rejected:bad_name"),
    [ngx_http_retarget_p_image] = ngx_string("rejected:bad_image"),
    [ngx_http_retarget_p_url] = ngx_string("rejected:bad_url"),
    [ngx_http_retarget_p_currency] = ngx_string("rejected:bad_currency"),
    [ngx_http_retarget_p_in_stock] = ngx_string("rejected:bad_in_stock"),
    [ngx_http_retarget_p_order] = ngx_string("rejected:bad_order"),
    [ngx_http_retarget_p_value] = ngx_string("rejected:bad_value"),
    [ngx_http_retarget_p_user] = ngx_string("rejected:bad_user"),
    [ngx_http_retarget_p_line] = ngx_string("rejected:bad_line"),
    [ngx_http_retarget_p_delta] = ngx_string("rejected:bad_delta"),
    [ngx_http_retarget_p_minor] = ngx_string("rejected:bad_minor")
};

static ngx_str_t  ngx_http_retarget_no[ngx_http_retarget_p_count] = {
    [ngx_http_retarget_p_sku] = ngx_string("rejected:no_sku"),
    [ngx_http_retarget_p_user] = ngx_string("rejected:no_user"),
    [ngx_http_retarget_p_line] = ngx_string("rejected:no_line"),
    [ngx_http_retarget_p_qty] = ngx_string("rejected:no_qty")
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
    ngx_string("$retarget_page_url"),
    ngx_string("$retarget_page_currency"),
    ngx_string("$retarget_page_in_stock")
};


/* the same, as keys of the stream's JSON */
const char  *ngx_http_retarget_json_keys[] = {
    "sku", "qty", "price", "name", "image", "url", "currency", "in_stock",
    "order", "value", "user", "line", "delta", "items", "minor"
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
    { ngx_string("cart_update"), ngx_http_retarget_ev_cart_update,
      ngx_string("cart_updates") },
    { ngx_string("cart_sync"), ngx_http_retarget_ev_cart_sync,
      ngx_string("cart_syncs") },
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

        if (value[i].len == sizeof("raw") - 1
            && ngx_strncmp(value[i].data, "raw", value[i].len) == 0)
        {
            if (ec->raw) {
                goto invalid_param;
            }

            ec->raw = 1;
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

        /* only what the visitor's query string says is URL-encoded */

        if (k < ngx_http_retarget_p_if && ngx_http_retarget_arg_only(&v)) {
            ec->decode |= (ngx_uint_t) 1 << k;
        }
    }

    if (ngx_http_retarget_event_page(cf, rlcf, ec, raw) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                   "retarget event \"%V\": type %d, counter \"%V\"",
                   &ec->name, (int) ec->type, &ec->counter);

    if ((ec->type == ngx_http_retarget_ev_product
         || ec->type == ngx_http_retarget_ev_cart_add)
        && ec->params[ngx_http_retarget_p_sku] == NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V %V\" requires \"sku=\"",
                           &cmd->name, &ec->name);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_retarget_cart_params(cf, cmd, ec) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ec->type == ngx_http_retarget_ev_identify
        && ec->params[ngx_http_retarget_p_user] == NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V identify\" requires \"user=\"", &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (ec->raw && ec->type != ngx_http_retarget_ev_identify) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"raw\" is only for \"identify\" in \"%V\"",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    /*
     * minor=N written as a literal: checked now, not at each event
     * (cart_sync's minor= may be a path inside each item)
     */

    if (ec->params[ngx_http_retarget_p_minor] != NULL
        && ec->type != ngx_http_retarget_ev_cart_sync
        && ec->params[ngx_http_retarget_p_minor]->lengths == NULL
        && (raw[ngx_http_retarget_p_minor].len != 1
            || raw[ngx_http_retarget_p_minor].data[0] < '0'
            || raw[ngx_http_retarget_p_minor].data[0] > '4'))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"minor=\" must be a digit 0..4 (the decimals "
                           "of price= and value= in minor units), not "
                           "\"%V\", in \"%V\"",
                           &raw[ngx_http_retarget_p_minor], &cmd->name);
        return NGX_CONF_ERROR;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                   "retarget event \"%V\": decode %xi, raw %ui",
                   &ec->name, ec->decode, ec->raw);

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
         ec->catalog && k <= ngx_http_retarget_p_in_stock;
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

        if (raw[k].len
            && ngx_http_retarget_catalog_later(cf, k, &raw[k]) != NGX_OK)
        {
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
 * The parameters of the cart events that name a line: cart_remove and
 * cart_update by the sku or the shop's line id, cart_update with qty= or
 * delta=, cart_sync with items= (its other parameters are paths inside
 * each item, ngx_http_retarget_cart_sync.c).
 */

static ngx_int_t
ngx_http_retarget_cart_params(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_retarget_event_conf_t *ec)
{
    ngx_http_complex_value_t  **pv;

    pv = ec->params;

    if ((ec->type == ngx_http_retarget_ev_cart_remove
         || ec->type == ngx_http_retarget_ev_cart_update)
        && pv[ngx_http_retarget_p_sku] == NULL
        && pv[ngx_http_retarget_p_line] == NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V %V\" requires \"sku=\" or \"line=\"",
                           &cmd->name, &ec->name);
        return NGX_ERROR;
    }

    if (ec->type == ngx_http_retarget_ev_cart_update
        && (pv[ngx_http_retarget_p_qty] == NULL)
           == (pv[ngx_http_retarget_p_delta] == NULL))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V cart_update\" requires \"qty=\" or "
                           "\"delta=\"", &cmd->name);
        return NGX_ERROR;
    }

    if (ec->type != ngx_http_retarget_ev_cart_update
        && pv[ngx_http_retarget_p_delta] != NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"delta=\" is only for \"cart_update\" in \"%V\"",
                           &cmd->name);
        return NGX_ERROR;
    }

    if ((ec->type == ngx_http_retarget_ev_cart_sync)
        != (pv[ngx_http_retarget_p_items] != NULL))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"cart_sync\" requires \"items=\", and "
                           "\"items=\" is only for it, in \"%V\"",
                           &cmd->name);
        return NGX_ERROR;
    }

    if (ec->type == ngx_http_retarget_ev_cart_sync && ec->catalog) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"catalog\" is not for \"cart_sync\" in \"%V\"",
                           &cmd->name);
        return NGX_ERROR;
    }

    return NGX_OK;
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

    ec->page = page;

    for (k = 0; page && k <= ngx_http_retarget_p_in_stock; k++) {
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
 * "0", NGX_ERROR when the event is rejected (or on a failure), NGX_OK
 * with the values that passed their checks.
 */

ngx_int_t
ngx_http_retarget_event_values(ngx_http_request_t *r,
    ngx_http_retarget_event_t *ev)
{
    ngx_int_t                        rc;
    ngx_str_t                        raw, sent;
    ngx_uint_t                       k;
    ngx_http_retarget_event_conf_t  *ec;

    ec = ev->conf;
    ev->qty = 1;
    ev->minor = NGX_HTTP_RETARGET_MINOR_NONE;

    /* the condition first: values of an event that did not happen are
     * not checked, nor counted as rejected */

    if (ec->params[ngx_http_retarget_p_if] != NULL) {
        if (ngx_http_complex_value(r, ec->params[ngx_http_retarget_p_if],
                                   &raw)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (raw.len == 0 || (raw.len == 1 && raw.data[0] == '0')) {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget event \"%V\": \"if=\" is \"%V\", "
                           "not logged", &ec->name, &raw);
            return NGX_DECLINED;
        }
    }

    if (ec->type == ngx_http_retarget_ev_cart_sync) {
        /* a JSON array and paths: ngx_http_retarget_cart_sync.c */
        return ngx_http_retarget_cart_sync_raw(r, ev);
    }

    if (ngx_http_retarget_event_minor(r, ev) != NGX_OK) {
        return NGX_ERROR;
    }

    for (k = 0; k < ngx_http_retarget_p_if; k++) {

        if (ec->params[k] == NULL || k == ngx_http_retarget_p_minor) {
            /* minor= is read first, ngx_http_retarget_event_minor() */
            continue;
        }

        if (ngx_http_complex_value(r, ec->params[k], &raw) != NGX_OK) {
            return NGX_ERROR;
        }

        /* a query argument is URL-encoded; anything else is as sent */

        if (ec->decode & ((ngx_uint_t) 1 << k)) {
            if (ngx_http_retarget_arg_decode(r->pool, &raw, &ev->v[k])
                != NGX_OK)
            {
                return NGX_ERROR;
            }

        } else {
            ev->v[k] = raw;
        }

        if (ev->v[k].len == 0) {
            /* an empty value is an absent one */
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget event \"%V\": %V empty, absent",
                           &ec->name, &ngx_http_retarget_param_names[k]);
            continue;
        }

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget event \"%V\": %V\"%V\"",
                       &ec->name, &ngx_http_retarget_param_names[k],
                       &ev->v[k]);

        if ((k == ngx_http_retarget_p_price || k == ngx_http_retarget_p_value)
            && ev->minor == NGX_HTTP_RETARGET_MINOR_BAD)
        {
            /* minor= was unusable (counted as bad_minor): no amount */
            ev->v[k].len = 0;
            continue;
        }

        sent = ev->v[k];

        rc = ngx_http_retarget_event_value(r, ev, k);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_OK) {
            continue;
        }

        if (ngx_http_retarget_needed(ev, k)) {
            ngx_http_retarget_value_failed(r, ev, k, 0, 1, &sent);
            return NGX_ERROR;
        }

        ngx_http_retarget_value_failed(r, ev, k, 0, 0, &sent);
        ev->v[k].len = 0;
    }

    if (ec->page && ev->v[ngx_http_retarget_p_sku].len == 0) {
        /* a page without product data: no product view, not an error */
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget event \"%V\": no product in the page, "
                       "not logged", &ec->name);
        return NGX_DECLINED;
    }

    /* a missing qty= is 1, but for cart_update (below) */

    for (k = 0; k < ngx_http_retarget_p_if; k++) {
        if (ev->v[k].len == 0 && ngx_http_retarget_no[k].len
            && k != ngx_http_retarget_p_qty
            && ngx_http_retarget_needed(ev, k))
        {
            ngx_http_retarget_value_failed(r, ev, k, 1, 1, NULL);
            return NGX_ERROR;
        }
    }

    /* a line named by either its sku or the shop's line id */

    if ((ec->type == ngx_http_retarget_ev_cart_remove
         || ec->type == ngx_http_retarget_ev_cart_update)
        && ev->v[ngx_http_retarget_p_sku].len == 0
        && ev->v[ngx_http_retarget_p_line].len == 0)
    {
        ngx_http_retarget_value_failed(r, ev, ngx_http_retarget_p_line, 1, 1,
                                       NULL);
        return NGX_ERROR;
    }

    if (ec->type == ngx_http_retarget_ev_cart_update
        && ev->v[ngx_http_retarget_p_qty].len == 0
        && ev->v[ngx_http_retarget_p_delta].len == 0)
    {
        ngx_http_retarget_value_failed(r, ev, ngx_http_retarget_p_qty, 1, 1,
                                       NULL);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * cart_sync: items= and the paths inside each item, as configured; the
 * items are checked one by one (ngx_http_retarget_cart_sync.c)
 */

static ngx_int_t
ngx_http_retarget_cart_sync_raw(ngx_http_request_t *r,
    ngx_http_retarget_event_t *ev)
{
    ngx_uint_t  k;

    for (k = 0; k < ngx_http_retarget_p_if; k++) {

        if (ev->conf->params[k] == NULL) {
            continue;
        }

        if (ngx_http_complex_value(r, ev->conf->params[k], &ev->v[k])
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * minor=N: price= and value= are integers in minor units with N
 * decimals.  An empty minor= is no minor=; one that is not 0..4 leaves
 * the event without its amounts.
 */

static ngx_int_t
ngx_http_retarget_event_minor(ngx_http_request_t *r,
    ngx_http_retarget_event_t *ev)
{
    ngx_str_t  raw;

    if (ev->conf->params[ngx_http_retarget_p_minor] == NULL) {
        return NGX_OK;
    }

    if (ngx_http_complex_value(r, ev->conf->params[ngx_http_retarget_p_minor],
                               &raw)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (raw.len == 0) {
        return NGX_OK;
    }

    if (raw.len == 1 && raw.data[0] >= '0' && raw.data[0] <= '4') {
        ev->minor = raw.data[0] - '0';
        return NGX_OK;
    }

    ngx_http_retarget_value_failed(r, ev, ngx_http_retarget_p_minor, 0, 0,
                                   &raw);
    ev->minor = NGX_HTTP_RETARGET_MINOR_BAD;

    return NGX_OK;
}


/*
 * One value, not empty, made what is stored and checked: NGX_OK, or
 * NGX_DECLINED when it fails its check (ev->v[k] may have changed).
 */

static ngx_int_t
ngx_http_retarget_event_value(ngx_http_request_t *r,
    ngx_http_retarget_event_t *ev, ngx_uint_t k)
{
    u_char      *p;
    size_t       n;
    int64_t      cents;
    ngx_str_t   *v;

    v = &ev->v[k];

    switch (k) {

    case ngx_http_retarget_p_image:
    case ngx_http_retarget_p_url:

        if (ngx_http_retarget_protocol_relative(r->pool, v) != NGX_OK) {
            return NGX_ERROR;
        }

        break;

    case ngx_http_retarget_p_user:
        if (!ev->conf->raw
            && ngx_http_retarget_user_normalise(r->pool, v) != NGX_OK)
        {
            return NGX_ERROR;
        }

        break;

    default:
        break;
    }

    if (ngx_http_retarget_event_check(k, v, ev) != NGX_OK) {
        return NGX_DECLINED;
    }

    switch (k) {

    case ngx_http_retarget_p_currency:

        /* "eur" as a page may write it: "EUR"; a variable's value is not
         * ours to change in place */

        p = ngx_pnalloc(r->pool, v->len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        for (n = 0; n < v->len; n++) {
            p[n] = ngx_toupper(v->data[n]);
        }

        v->data = p;
        break;

    case ngx_http_retarget_p_price:
    case ngx_http_retarget_p_value:

        /*
         * Kept as sent when the store reads it back as it is ("12.5");
         * "15.0000" or minor units are written as cents ("15.00").
         */

        if (ev->minor == NGX_HTTP_RETARGET_MINOR_NONE
            && ngx_http_retarget_parse_amount(v, &cents) == NGX_OK)
        {
            break;
        }

        p = ngx_pnalloc(r->pool, NGX_INT64_LEN + sizeof(".00"));
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->len = ngx_sprintf(p, "%L.%02L", ev->cents / 100, ev->cents % 100)
                 - p;
        v->data = p;
        break;

    case ngx_http_retarget_p_user:
        if (!ev->conf->raw
            && ngx_http_retarget_user_hash(r->pool, v) != NGX_OK)
        {
            return NGX_ERROR;
        }

        break;

    default:
        break;
    }

    return NGX_OK;
}


/* the values without which the event is not one */

static ngx_uint_t
ngx_http_retarget_needed(ngx_http_retarget_event_t *ev, ngx_uint_t k)
{
    ngx_http_retarget_ev_type_e  type;

    type = ev->conf->type;

    switch (k) {

    case ngx_http_retarget_p_sku:
        if (type == ngx_http_retarget_ev_cart_remove
            || type == ngx_http_retarget_ev_cart_update)
        {
            /* either names the line: checked after all values */
            return ev->conf->params[ngx_http_retarget_p_line] == NULL;
        }

        return type == ngx_http_retarget_ev_product
               || type == ngx_http_retarget_ev_cart_add;

    case ngx_http_retarget_p_line:
        return (type == ngx_http_retarget_ev_cart_remove
                || type == ngx_http_retarget_ev_cart_update)
               && ev->conf->params[ngx_http_retarget_p_sku] == NULL;

    case ngx_http_retarget_p_delta:
        return 1;

    case ngx_http_retarget_p_qty:
        /* a quantity nobody can read is not a quantity of 1 */
        return 1;

    case ngx_http_retarget_p_order:
        /* without it, the same purchase would be counted again */
        return type == ngx_http_retarget_ev_purchase;

    case ngx_http_retarget_p_user:
        return type == ngx_http_retarget_ev_identify;

    default:
        return 0;
    }
}


/*
 * A value that failed (or is missing): counted under its reason, and
 * logged (ngx_http_retarget_reason_log()).  A user value is personal
 * data: its value is not logged.
 */

static void
ngx_http_retarget_value_failed(ngx_http_request_t *r,
    ngx_http_retarget_event_t *ev, ngx_uint_t k, ngx_uint_t missing,
    ngx_uint_t reject, ngx_str_t *value)
{
    ngx_str_t  *field, reason, name, hidden;

    field = missing ? &ngx_http_retarget_no[k] : &ngx_http_retarget_bad[k];

    if (field->len) {
        ngx_http_retarget_count(field, 1);
        reason.data = field->data + sizeof("rejected:") - 1;
        reason.len = field->len - (sizeof("rejected:") - 1);

    } else {
        ngx_str_set(&reason, "invalid");
    }

    name = ngx_http_retarget_param_names[k];
    name.len--;

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget event \"%V\": %V %s (%V)", &ev->conf->name,
                   &name, reject ? "rejects the event" : "dropped", &reason);

    if (!missing && k == ngx_http_retarget_p_user) {
        ngx_str_set(&hidden, "(not shown)");
        value = &hidden;
    }

    ngx_http_retarget_reason_log(r->connection->log, &ev->conf->name,
                                 &r->uri, &reason, reject ? NULL : &name,
                                 &name, missing ? NULL : value);
}


/*
 * A rejected event, or a value dropped (kept: the parameter's name), at
 * "notice" at most once a minute per reason in this worker: the event,
 * where (the request's URI) and the offending value (NULL: missing),
 * escaped.  The request may be gone (an answer from Redis decided):
 * nothing here needs its pool.
 */

void
ngx_http_retarget_reason_log(ngx_log_t *log, ngx_str_t *event,
    ngx_str_t *uri, ngx_str_t *reason, ngx_str_t *kept, ngx_str_t *param,
    ngx_str_t *value)
{
    u_char        where[NGX_HTTP_RETARGET_LOG_VALUE_SIZE];
    u_char        shown[NGX_HTTP_RETARGET_LOG_VALUE_SIZE];
    time_t        now;
    ngx_uint_t    i;

    /* the reasons seen, and when each was last logged */
    static struct {
        u_char    name[NGX_HTTP_RETARGET_REASON_LEN];
        size_t    len;
        time_t    logged;
    }             seen[NGX_HTTP_RETARGET_REASONS];
    static ngx_uint_t  nseen;

    now = ngx_time();

    for (i = 0; i < nseen; i++) {
        if (seen[i].len == reason->len
            && ngx_strncmp(seen[i].name, reason->data, reason->len) == 0)
        {
            break;
        }
    }

    if (i == nseen) {
        if (nseen == NGX_HTTP_RETARGET_REASONS
            || reason->len > NGX_HTTP_RETARGET_REASON_LEN)
        {
            /* not a reason of this module's: the last slot's limit */
            i = NGX_HTTP_RETARGET_REASONS - 1;

        } else {
            ngx_memcpy(seen[i].name, reason->data, reason->len);
            seen[i].len = reason->len;
            nseen++;
        }

    } else if (now - seen[i].logged < NGX_HTTP_RETARGET_REASON_LOG_PERIOD) {
        return;
    }

    seen[i].logged = now;

    (void) ngx_http_retarget_log_value_buf(where, uri->data, uri->len);

    if (value == NULL) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "retarget: event \"%V\" at \"%s\" rejected (%V): "
                      "no %V=", event, where, reason, param);
        return;
    }

    (void) ngx_http_retarget_log_value_buf(shown, value->data, value->len);

    if (kept == NULL) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "retarget: event \"%V\" at \"%s\" rejected (%V): "
                      "%V=\"%s\"", event, where, reason, param, shown);
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "retarget: event \"%V\" at \"%s\" kept without %V (%V): "
                  "%V=\"%s\"", event, where, kept, reason, param, shown);
}


/* "$arg_NAME" or "${arg_NAME}", and nothing else */

static ngx_uint_t
ngx_http_retarget_arg_only(ngx_str_t *v)
{
    u_char  *p, *last;

    p = v->data;
    last = v->data + v->len;

    if (v->len < sizeof("$arg_x") - 1 || *p++ != '$') {
        return 0;
    }

    if (*p == '{') {
        if (last[-1] != '}') {
            return 0;
        }

        p++;
        last--;
    }

    if (last - p < (ssize_t) sizeof("arg_x") - 1
        || ngx_strncmp(p, "arg_", sizeof("arg_") - 1) != 0)
    {
        return 0;
    }

    for (p += sizeof("arg_") - 1; p < last; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '_'))
        {
            return 0;
        }
    }

    return 1;
}


/* a query argument's value: "+" is a space, then %XX */

static ngx_int_t
ngx_http_retarget_arg_decode(ngx_pool_t *pool, ngx_str_t *raw,
    ngx_str_t *out)
{
    u_char  *dst, *src;

    dst = ngx_pnalloc(pool, raw->len + 1);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    out->data = dst;

    for (src = raw->data; src < raw->data + raw->len; src++) {
        *dst++ = (*src == '+') ? ' ' : *src;
    }

    src = out->data;
    dst = out->data;
    ngx_unescape_uri(&dst, &src, raw->len, 0);
    out->len = dst - out->data;

    return NGX_OK;
}


/* trimmed of ASCII white space, ASCII lower-cased: "A@B.COM " = "a@b.com" */

static ngx_int_t
ngx_http_retarget_user_normalise(ngx_pool_t *pool, ngx_str_t *v)
{
    u_char  *p, *last, *dst;

    p = v->data;
    last = v->data + v->len;

    while (p < last && (*p == ' ' || (*p >= '\t' && *p <= '\r'))) {
        p++;
    }

    while (last > p && (last[-1] == ' ' || (last[-1] >= '\t'
                                            && last[-1] <= '\r')))
    {
        last--;
    }

    dst = ngx_pnalloc(pool, (last - p) + 1);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    ngx_strlow(dst, p, last - p);

    v->data = dst;
    v->len = last - p;

    return NGX_OK;
}


/* the lowercase hex SHA-256, as audience uploads take an e-mail */

static ngx_int_t
ngx_http_retarget_user_hash(ngx_pool_t *pool, ngx_str_t *v)
{
    u_char        md[EVP_MAX_MD_SIZE], *p;
    unsigned int  n;

    if (EVP_Digest(v->data, v->len, md, &n, EVP_sha256(), NULL) != 1) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "retarget: EVP_Digest() failed");
        return NGX_ERROR;
    }

    p = ngx_pnalloc(pool, 2 * n);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_hex_dump(p, md, n) - p;
    v->data = p;

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

    case ngx_http_retarget_p_line:
        return ngx_http_retarget_printable(v, NGX_HTTP_RETARGET_LINE_MAX, 0);

    case ngx_http_retarget_p_qty:
        n = ngx_http_retarget_parse_number(v);

        /* a cart_update's qty=0 removes the line */
        if (n < (ev->conf != NULL
                 && ev->conf->type == ngx_http_retarget_ev_cart_update
                 ? 0 : 1)
            || n > 9999)
        {
            return NGX_ERROR;
        }

        ev->qty = n;
        return NGX_OK;

    case ngx_http_retarget_p_delta:
        return ngx_http_retarget_delta(v, &ev->delta);

    case ngx_http_retarget_p_price:
    case ngx_http_retarget_p_value:
        return ngx_http_retarget_event_amount(v, ev->minor, &ev->cents);

    case ngx_http_retarget_p_name:
        return ngx_http_retarget_printable(v, NGX_HTTP_RETARGET_NAME_MAX, 1);

    case ngx_http_retarget_p_currency:
        /* ISO 4217: three letters (stored upper case, event_value()) */
        if (v->len != 3) {
            return NGX_ERROR;
        }

        for (n = 0; n < 3; n++) {
            if ((v->data[n] | 0x20) < 'a' || (v->data[n] | 0x20) > 'z') {
                return NGX_ERROR;
            }
        }

        return NGX_OK;

    case ngx_http_retarget_p_in_stock:
        /* "1" or "0", as $retarget_page_in_stock has it */
        return (v->len == 1 && (v->data[0] == '0' || v->data[0] == '1'))
               ? NGX_OK : NGX_ERROR;

    case ngx_http_retarget_p_image:
    case ngx_http_retarget_p_url:
        return ngx_http_retarget_event_url(v);

    default: /* items, minor: cart_sync's, never checked here */
        return NGX_ERROR;
    }
}


/* "+2", "-1", "3": a signed change of at most 9999 */

static ngx_int_t
ngx_http_retarget_delta(ngx_str_t *v, int64_t *delta)
{
    int64_t    n;
    ngx_str_t  digits;

    digits = *v;

    if (v->data[0] == '+' || v->data[0] == '-') {
        digits.data++;
        digits.len--;
    }

    n = ngx_http_retarget_parse_number(&digits);

    if (n == NGX_ERROR || n > 9999) {
        return NGX_ERROR;
    }

    *delta = (v->data[0] == '-') ? -n : n;

    return NGX_OK;
}


/*
 * An amount in cents, at most NGX_HTTP_RETARGET_AMOUNT_MAX.  minor NONE:
 * "12", "12.5", "15.0000": digits with up to four decimals, rounded to
 * cents half up ("0.005" is 1 cent).  minor N (0..4): digits in minor
 * units with N decimals ("1500" with 2 is 15.00, with 0 is 1500.00).
 */

ngx_int_t
ngx_http_retarget_event_amount(ngx_str_t *v, ngx_int_t minor, int64_t *cents)
{
    u_char      *p, *last;
    int64_t      n, unit;
    ngx_uint_t   digits, decimals, dot, i;

    n = 0;
    digits = 0;
    decimals = 0;
    dot = 0;

    last = v->data + v->len;

    for (p = v->data; p < last; p++) {

        if (*p == '.' && !dot && digits
            && minor == NGX_HTTP_RETARGET_MINOR_NONE)
        {
            dot = 1;
            continue;
        }

        if (*p < '0' || *p > '9' || digits == 16 || decimals == 4) {
            return NGX_ERROR;
        }

        n = n * 10 + (*p - '0');
        digits++;
        decimals += dot;
    }

    if (digits == 0 || (dot && decimals == 0)
        || minor < NGX_HTTP_RETARGET_MINOR_NONE || minor > 4)
    {
        return NGX_ERROR;
    }

    if (minor == NGX_HTTP_RETARGET_MINOR_NONE) {
        minor = decimals;
    }

    /* n < 10^16: n * 100 fits, the rounding too */

    if (minor <= 2) {
        for (i = minor; i < 2; i++) {
            n *= 10;
        }

    } else {
        for (unit = 1, i = 2; i < (ngx_uint_t) minor; i++) {
            unit *= 10;
        }

        n = (n + unit / 2) / unit;
    }

    if (n > NGX_HTTP_RETARGET_AMOUNT_MAX) {
        return NGX_ERROR;
    }

    *cents = n;

    return NGX_OK;
}


/*
 * "//cdn.example.com/x.png", common in shop themes, is made https: what
 * an image or url of an event or of a cart_sync item is stored as
 */

ngx_int_t
ngx_http_retarget_protocol_relative(ngx_pool_t *pool, ngx_str_t *v)
{
    u_char  *p;

    if (v->len < 3 || v->data[0] != '/' || v->data[1] != '/'
        || !((v->data[2] >= 'a' && v->data[2] <= 'z')
             || (v->data[2] >= 'A' && v->data[2] <= 'Z')
             || (v->data[2] >= '0' && v->data[2] <= '9')))
    {
        return NGX_OK;
    }

    p = ngx_pnalloc(pool, sizeof("https:") - 1 + v->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "https:%V", v) - p;
    v->data = p;

    return NGX_OK;
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
    u_char     *p, *last;
    ngx_str_t  *rv;

    p = v->data;
    last = v->data + v->len;

    while (ngx_http_retarget_next_var(&p, last, var)) {

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


/* the next "$name" or "${name}" in *pp..last, in var: 0 when none */

static ngx_uint_t
ngx_http_retarget_next_var(u_char **pp, u_char *last, ngx_str_t *var)
{
    u_char      *p, *start;
    ngx_uint_t   brace;

    for (p = *pp; p < last; ) {

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

        *pp = p;

        return 1;
    }

    *pp = last;

    return 0;
}


/*
 * A "catalog" value that names a variable the configuration may define
 * after this directive: checked once every retarget_extract is known
 * (ngx_http_retarget_catalog_check())
 */

static ngx_int_t
ngx_http_retarget_catalog_later(ngx_conf_t *cf, ngx_uint_t k, ngx_str_t *raw)
{
    ngx_http_retarget_catalog_value_t  *cv;
    ngx_http_retarget_main_conf_t      *rmcf;

    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_retarget_module);

    if (rmcf->catalog_values == NULL) {
        rmcf->catalog_values = ngx_array_create(cf->pool, 4,
                                    sizeof(ngx_http_retarget_catalog_value_t));
        if (rmcf->catalog_values == NULL) {
            return NGX_ERROR;
        }
    }

    cv = ngx_array_push(rmcf->catalog_values);
    if (cv == NULL) {
        return NGX_ERROR;
    }

    cv->param = k;
    cv->value = *raw;
    cv->file = cf->conf_file->file.name.data;
    cv->line = cf->conf_file->line;

    return NGX_OK;
}


/*
 * At the end of the configuration: no "catalog" value takes a
 * "retarget_extract ... request" variable, what the visitor's own
 * request body says (a response or page extract is the shop's)
 */

ngx_int_t
ngx_http_retarget_catalog_check(ngx_conf_t *cf)
{
    u_char                             *p, *last;
    ngx_str_t                           var;
    ngx_uint_t                          i;
    ngx_http_retarget_catalog_value_t  *cv;
    ngx_http_retarget_main_conf_t      *rmcf;

    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_retarget_module);

    if (rmcf->catalog_values == NULL) {
        return NGX_OK;
    }

    cv = rmcf->catalog_values->elts;

    for (i = 0; i < rmcf->catalog_values->nelts; i++) {

        p = cv[i].value.data;
        last = p + cv[i].value.len;

        while (ngx_http_retarget_next_var(&p, last, &var)) {

            if (!ngx_http_retarget_extract_is_request(cf, &var)) {
                continue;
            }

            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"%V%V\" of a \"catalog\" event takes \"$%V\", "
                          "a \"retarget_extract ... request\" variable: "
                          "the product data of every visitor must come from "
                          "the shop (a response or page extract, the page's "
                          "own data) in %s:%ui",
                          &ngx_http_retarget_param_names[cv[i].param],
                          &cv[i].value, &var, cv[i].file, cv[i].line);
            return NGX_ERROR;
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
