
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Behaviour logging: after the response (log phase), the page view and
 * the events of "retarget_event" become one pipelined batch of Redis
 * writes that nobody waits for.  The daily counters they move are in
 * ngx_http_retarget_counters.c.
 *
 * A few events need an answer first ("ops"): a purchase asks whether its
 * order is new and what reminder led to it, a cart line needs the cart's
 * new quantity.  Their writes follow the answer, and the worker's later
 * writes wait behind them.
 */


#include "ngx_http_retarget_module.h"
#include "ngx_http_retarget_request.h"

#include <jansson.h>
#include <openssl/rand.h>




typedef enum {
    ngx_http_retarget_ev_product = 0,
    ngx_http_retarget_ev_cart_add,
    ngx_http_retarget_ev_cart_remove,
    ngx_http_retarget_ev_cart_clear,
    ngx_http_retarget_ev_checkout,
    ngx_http_retarget_ev_purchase,
    ngx_http_retarget_ev_identify,
    ngx_http_retarget_ev_custom
} ngx_http_retarget_ev_type_e;


/* the parameters of retarget_event, in this order */
typedef enum {
    ngx_http_retarget_p_sku = 0,
    ngx_http_retarget_p_qty,
    ngx_http_retarget_p_price,
    ngx_http_retarget_p_name,
    ngx_http_retarget_p_image,
    ngx_http_retarget_p_url,
    ngx_http_retarget_p_order,
    ngx_http_retarget_p_value,
    ngx_http_retarget_p_user,
    ngx_http_retarget_p_if,
    ngx_http_retarget_p_count
} ngx_http_retarget_param_e;


typedef struct {
    ngx_str_t                      name;
    ngx_http_retarget_ev_type_e    type;
    ngx_str_t                      counter;
    ngx_http_complex_value_t      *params[ngx_http_retarget_p_count];
} ngx_http_retarget_event_conf_t;


/* an event's values, checked */
typedef struct {
    ngx_http_retarget_event_conf_t  *conf;
    ngx_str_t                        v[ngx_http_retarget_p_count];
    int64_t                          qty;
    int64_t                          cents;     /* price or value */
} ngx_http_retarget_event_t;


/* the commands of one event, being built in the request pool */
typedef struct {
    ngx_http_request_t            *r;
    ngx_http_retarget_main_conf_t *rmcf;
    ngx_array_t                   *asks;      /* their answers decide */
    ngx_array_t                   *cmds;
    ngx_str_t                     *vid;
    ngx_str_t                      now;
    ngx_str_t                      ms;        /* of items, cart_cleared */
    ngx_uint_t                     line;      /* the cart line, in cmds */
    size_t                         gap;       /* where its QTY goes */
} ngx_http_retarget_batch_t;


/* this worker's logging state */
typedef struct {
    u_char                         id_prefix[12];  /* of event ids */
    int64_t                        cleared_ms; /* the last cart_cleared */
    int64_t                        last_ms;    /* the newest item */
} ngx_http_retarget_events_t;


typedef struct ngx_http_retarget_op_s  ngx_http_retarget_op_t;

typedef void (*ngx_http_retarget_op_answer_pt)(ngx_http_retarget_op_t *op,
    ngx_uint_t i, redisReply *reply);
typedef void (*ngx_http_retarget_op_done_pt)(ngx_http_retarget_op_t *op);


/*
 * Commands whose answers decide the writes that follow them ("asks"),
 * and those writes, in one block that outlives the request.
 */
struct ngx_http_retarget_op_s {
    ngx_http_retarget_op_answer_pt   answer;    /* reply NULL: none came */
    ngx_http_retarget_op_done_pt     done;      /* sends the writes */
    ngx_http_retarget_cmd_t         *cmds;      /* the asks, then writes */
    ngx_uint_t                       nasks;
    ngx_uint_t                       ncmds;
    ngx_uint_t                       keep;      /* bits: asks that are
                                                   written when they cannot
                                                   be asked */
    ngx_uint_t                       asked;
    ngx_uint_t                       answered;
};


/* a cart_add: the line in the meta holds the cart's new quantity */
typedef struct {
    ngx_http_retarget_op_t           op;
    ngx_uint_t                       line;      /* its write */
    size_t                           gap;       /* where its QTY goes */
    int64_t                          qty;       /* 0: no answer */
} ngx_http_retarget_cart_op_t;


/* a purchase: counted once per order id, and attributed */
typedef struct {
    ngx_http_retarget_op_t           op;
    ngx_http_retarget_main_conf_t   *rmcf;
    ngx_str_t                       *counter;
    int64_t                          cents;
    time_t                           now;
    time_t                           click_window;
    time_t                           view_window;
    ngx_str_t                       *conversions;  /* attributed to */
    ngx_str_t                       *revenue;
    unsigned                         order:1;   /* asks "SET order NX" */
    unsigned                         duplicate:1;
} ngx_http_retarget_purchase_t;


static ngx_int_t ngx_http_retarget_log_pageview(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_http_retarget_loc_conf_t *rlcf);
static ngx_int_t ngx_http_retarget_log_event(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_http_retarget_event_conf_t *ec);
static ngx_int_t ngx_http_retarget_event_values(ngx_http_request_t *r,
    ngx_http_retarget_event_t *ev);
static ngx_int_t ngx_http_retarget_check_value(ngx_uint_t param,
    ngx_str_t *v, ngx_http_retarget_event_t *ev);
static ngx_int_t ngx_http_retarget_printable(ngx_str_t *v, size_t max,
    ngx_uint_t spaces);
static ngx_int_t ngx_http_retarget_order_ask(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev);
static ngx_int_t ngx_http_retarget_visitor_writes(
    ngx_http_retarget_batch_t *b, ngx_http_retarget_ctx_t *ctx,
    ngx_http_retarget_event_t *ev);
static ngx_int_t ngx_http_retarget_product_hash(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev);
static ngx_int_t ngx_http_retarget_item(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev, ngx_uint_t cart);
static ngx_int_t ngx_http_retarget_ask_last(ngx_http_retarget_batch_t *b);
static void ngx_http_retarget_send_last(ngx_http_retarget_batch_t *b);
static int64_t ngx_http_retarget_ms(ngx_uint_t clear);
static ngx_int_t ngx_http_retarget_cart_changed(ngx_http_retarget_batch_t *b);
static ngx_int_t ngx_http_retarget_touch(ngx_http_retarget_batch_t *b);
static ngx_http_retarget_cmd_t *ngx_http_retarget_vcmd(
    ngx_http_retarget_batch_t *b, const char *name, char *suffix,
    ngx_str_t *a1, ngx_str_t *a2);
static ngx_http_retarget_cmd_t *ngx_http_retarget_key_cmd(
    ngx_http_retarget_batch_t *b, const char *name, ngx_str_t *vid,
    char *suffix, ngx_str_t *tail, ngx_str_t *a1, ngx_str_t *a2);
static ngx_int_t ngx_http_retarget_vexpire(ngx_http_retarget_batch_t *b,
    char *suffix);
static ngx_int_t ngx_http_retarget_stream(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_str_t *type,
    ngx_http_retarget_event_t *ev, ngx_array_t *cmds);
static ngx_int_t ngx_http_retarget_cart_op(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev);
static void ngx_http_retarget_cart_answer(ngx_http_retarget_op_t *op,
    ngx_uint_t i, redisReply *reply);
static void ngx_http_retarget_cart_done(ngx_http_retarget_op_t *op);
static ngx_int_t ngx_http_retarget_purchase_op(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev);
static void ngx_http_retarget_purchase_answer(ngx_http_retarget_op_t *op,
    ngx_uint_t i, redisReply *reply);
static ngx_str_t *ngx_http_retarget_attribute(
    ngx_http_retarget_purchase_t *p, redisReply *stamp, ngx_uint_t click);
static void ngx_http_retarget_purchase_done(ngx_http_retarget_op_t *op);
static ngx_http_retarget_op_t *ngx_http_retarget_op_create(size_t size,
    ngx_http_retarget_batch_t *b);
static void ngx_http_retarget_op_run(ngx_http_retarget_op_t *op);
static void ngx_http_retarget_op_answered(void *data, redisReply *reply);
static void ngx_http_retarget_op_finish(ngx_http_retarget_op_t *op);

static ngx_int_t ngx_http_retarget_expire(ngx_http_request_t *r,
    ngx_array_t *cmds, ngx_str_t *vid, char *suffix);



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


/* the same, as keys of the stream's JSON */
static const char  *ngx_http_retarget_json_keys[] = {
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


static ngx_str_t  ngx_http_retarget_c_pageviews = ngx_string("pageviews");
static ngx_str_t  ngx_http_retarget_t_pageview = ngx_string("pageview");
static ngx_str_t  ngx_http_retarget_c_new = ngx_string("visitors_new");
static ngx_str_t  ngx_http_retarget_c_notices = ngx_string("notices");
static ngx_str_t  ngx_http_retarget_c_gpc = ngx_string("gpc");
static ngx_str_t  ngx_http_retarget_c_revenue = ngx_string("revenue");
static ngx_str_t  ngx_http_retarget_c_rejected = ngx_string("rejected");
static ngx_str_t  ngx_http_retarget_c_duplicate =
    ngx_string("purchases_duplicate");


/* hash fields and constant arguments */
static ngx_str_t  ngx_http_retarget_f_last_seen = ngx_string("last_seen");
static ngx_str_t  ngx_http_retarget_f_first_seen = ngx_string("first_seen");
static ngx_str_t  ngx_http_retarget_f_cart_updated =
    ngx_string("cart_updated");
static ngx_str_t  ngx_http_retarget_f_purchased = ngx_string("purchased");
static ngx_str_t  ngx_http_retarget_f_checkout = ngx_string("checkout");
static ngx_str_t  ngx_http_retarget_f_user = ngx_string("user");
static ngx_str_t  ngx_http_retarget_f_cart_cleared =
    ngx_string("cart_cleared");
static ngx_str_t  ngx_http_retarget_f_clicked = ngx_string("clicked");
static ngx_str_t  ngx_http_retarget_f_seen = ngx_string("seen");
static ngx_str_t  ngx_http_retarget_s0 = ngx_string("0");
static ngx_str_t  ngx_http_retarget_viewed_last = ngx_string("19");


static ngx_http_retarget_events_t  *ngx_http_retarget_events;


/* retarget_event type [sku=V] [qty=V] ... [if=V] */

char *
ngx_http_retarget_event_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_retarget_loc_conf_t *rlcf = conf;

    u_char                            *p;
    ngx_str_t                         *value, v;
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
        /* a free-form name: reaches the stream and "events:<name>" */

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

        ec->counter.len = sizeof("events:") - 1 + ec->name.len;
        ec->counter.data = ngx_pnalloc(cf->pool, ec->counter.len);
        if (ec->counter.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_sprintf(ec->counter.data, "events:%V", &ec->name);
    }

    for (i = 2; i < cf->args->nelts; i++) {

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
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid or duplicate parameter \"%V\" "
                               "in \"%V\"", &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }

        v.data = value[i].data + ngx_http_retarget_param_names[k].len;
        v.len = value[i].len - ngx_http_retarget_param_names[k].len;

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

    return NGX_CONF_OK;

invalid_type:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid event type \"%V\" in \"%V\": a known type "
                       "or up to 32 of [a-z0-9_]", &ec->name, &cmd->name);

    return NGX_CONF_ERROR;
}


ngx_int_t
ngx_http_retarget_event_init_process(ngx_cycle_t *cycle,
    ngx_http_retarget_main_conf_t *rmcf)
{
    u_char                       raw[8];
    ngx_str_t                    src, dst;
    ngx_http_retarget_events_t  *evs;

    evs = ngx_pcalloc(cycle->pool, sizeof(ngx_http_retarget_events_t));
    if (evs == NULL) {
        return NGX_ERROR;
    }

    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "retarget: RAND_bytes() failed");
        return NGX_ERROR;
    }

    src.len = sizeof(raw);
    src.data = raw;
    dst.data = evs->id_prefix;

    /* 8 random bytes: 11 characters, null-terminated by ngx_pcalloc() */
    ngx_encode_base64url(&dst, &src);

    ngx_http_retarget_events = evs;

    return ngx_http_retarget_counters_init_process(cycle, rmcf);
}


/*
 * The log phase of the main request.  Everything here only queues
 * writes: the response is already on its way.
 */

ngx_int_t
ngx_http_retarget_log_handler(ngx_http_request_t *r)
{
    ngx_uint_t                       i;
    ngx_http_retarget_ctx_t         *ctx;
    ngx_http_retarget_loc_conf_t    *rlcf;
    ngx_http_retarget_event_conf_t  *ec;

    if (r != r->main) {
        return NGX_OK;
    }

    ctx = ngx_http_retarget_get_ctx(r);

    if (ctx == NULL || ctx->logged) {
        return NGX_OK;
    }

    ctx->logged = 1;

    ngx_http_retarget_status_decision(ctx->decision);

    if (ctx->bypass || ngx_http_retarget_events == NULL) {
        /* the module is off here, or there is no Redis to log to */
        return NGX_OK;
    }

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_retarget_module);

    if (ngx_http_retarget_log_pageview(r, ctx, rlcf) != NGX_OK) {
        return NGX_OK;
    }

    /* what the page's reminder changed, pipelined like the rest */
    (void) ngx_http_retarget_campaign_log(r, ctx);

    /* a HEAD request did not do what the location's events say */

    if (rlcf->events == NULL || !ctx->tracked
        || r->method == NGX_HTTP_HEAD
        || r->headers_out.status >= NGX_HTTP_BAD_REQUEST)
    {
        return NGX_OK;
    }

    ec = rlcf->events->elts;

    for (i = 0; i < rlcf->events->nelts; i++) {
        (void) ngx_http_retarget_log_event(r, ctx, &ec[i]);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_retarget_log_pageview(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_http_retarget_loc_conf_t *rlcf)
{
    ngx_array_t  *cmds;

    if (ctx->consent == ngx_http_retarget_consent_gpc) {
        ngx_http_retarget_count(&ngx_http_retarget_c_gpc, 1);
    }

    if (ctx->notice_shown) {
        ngx_http_retarget_count(&ngx_http_retarget_c_notices, 1);
    }

    /* a page view: an HTML page this module may inject into */

    if (r->headers_out.status != NGX_HTTP_OK
        || ngx_http_test_content_type(r, &rlcf->types) == NULL)
    {
        return NGX_OK;
    }

    ngx_http_retarget_count(&ngx_http_retarget_c_pageviews, 1);

    if (ctx->new_visitor) {
        ngx_http_retarget_count(&ngx_http_retarget_c_new, 1);
    }

    if (!rlcf->stream_pageviews || !ctx->tracked) {
        /* plain page views touch no per-visitor state */
        return NGX_OK;
    }

    cmds = ngx_array_create(r->pool, 1, sizeof(ngx_http_retarget_cmd_t));
    if (cmds == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_retarget_stream(r, ctx, &ngx_http_retarget_t_pageview,
                                 NULL, cmds)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_retarget_send_cmds(cmds->elts, cmds->nelts);

    return NGX_OK;
}


static ngx_int_t
ngx_http_retarget_log_event(ngx_http_request_t *r,
    ngx_http_retarget_ctx_t *ctx, ngx_http_retarget_event_conf_t *ec)
{
    u_char                     *p;
    ngx_int_t                   rc;
    ngx_array_t                *stream;
    ngx_http_retarget_cmd_t    *cmd;
    ngx_http_retarget_batch_t   b;
    ngx_http_retarget_event_t   ev;

    ngx_memzero(&ev, sizeof(ngx_http_retarget_event_t));
    ev.conf = ec;

    rc = ngx_http_retarget_event_values(r, &ev);

    if (rc == NGX_DECLINED) {
        /* the "if=" condition is false */
        return NGX_OK;
    }

    if (rc != NGX_OK) {
        ngx_http_retarget_count(&ngx_http_retarget_c_rejected, 1);
        return NGX_OK;
    }

    ngx_memzero(&b, sizeof(ngx_http_retarget_batch_t));

    b.r = r;
    b.rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);
    b.vid = &ctx->visitor;

    b.asks = ngx_array_create(r->pool, 2, sizeof(ngx_http_retarget_cmd_t));
    b.cmds = ngx_array_create(r->pool, 16, sizeof(ngx_http_retarget_cmd_t));
    stream = ngx_array_create(r->pool, 1, sizeof(ngx_http_retarget_cmd_t));
    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);

    if (b.asks == NULL || b.cmds == NULL || stream == NULL || p == NULL) {
        return NGX_ERROR;
    }

    b.now.data = p;
    b.now.len = ngx_sprintf(p, "%T", ngx_time()) - p;

    rc = ngx_http_retarget_stream(r, ctx, &ec->name, &ev, stream);

    if (rc == NGX_DECLINED) {
        ngx_http_retarget_count(&ngx_http_retarget_c_rejected, 1);
        return NGX_OK;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    if (ec->type == ngx_http_retarget_ev_purchase
        && ev.v[ngx_http_retarget_p_order].len
        && ngx_http_retarget_order_ask(&b, &ev) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_retarget_visitor_writes(&b, ctx, &ev) != NGX_OK) {
        return NGX_ERROR;
    }

    if (stream->nelts) {
        cmd = ngx_array_push(b.cmds);
        if (cmd == NULL) {
            return NGX_ERROR;
        }

        *cmd = *(ngx_http_retarget_cmd_t *) stream->elts;
    }

    if (b.asks->nelts) {
        return (ec->type == ngx_http_retarget_ev_cart_add)
               ? ngx_http_retarget_cart_op(&b, &ev)
               : ngx_http_retarget_purchase_op(&b, &ev);
    }

    ngx_http_retarget_send_cmds(b.cmds->elts, b.cmds->nelts);

    ngx_http_retarget_count(&ec->counter, 1);

    if (ec->type == ngx_http_retarget_ev_purchase && ev.cents) {
        ngx_http_retarget_count(&ngx_http_retarget_c_revenue, ev.cents);
    }

    return NGX_OK;
}


/*
 * Evaluates and checks the values: NGX_DECLINED when "if=" is empty or
 * "0", NGX_ERROR when a value is invalid (the event is not written).
 */

static ngx_int_t
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
            continue;
        }

        if (ngx_http_retarget_check_value(k, &ev->v[k], ev) != NGX_OK) {
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
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_retarget_check_value(ngx_uint_t param, ngx_str_t *v,
    ngx_http_retarget_event_t *ev)
{
    ngx_int_t  n;

    switch (param) {

    case ngx_http_retarget_p_sku:
    case ngx_http_retarget_p_order:
        return ngx_http_retarget_printable(v, 64, 0);

    case ngx_http_retarget_p_user:
        return ngx_http_retarget_printable(v, 128, 0);

    case ngx_http_retarget_p_qty:
        n = ngx_atoi(v->data, v->len);
        if (n < 1 || n > 9999) {
            return NGX_ERROR;
        }

        ev->qty = n;
        return NGX_OK;

    case ngx_http_retarget_p_price:
    case ngx_http_retarget_p_value:
        return ngx_http_retarget_parse_amount(v, &ev->cents);

    case ngx_http_retarget_p_name:
        return ngx_http_retarget_printable(v, 200, 1);

    default: /* image, url */
        if (ngx_http_retarget_printable(v, 1024, 0) != NGX_OK) {
            return NGX_ERROR;
        }

        /* a path on this site or an http(s) URL: never javascript: */

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
}




/* no control characters, UTF-8 only: what every stored value must be */

static ngx_int_t
ngx_http_retarget_printable(ngx_str_t *v, size_t max, ngx_uint_t spaces)
{
    u_char    *p, *last;
    uint32_t   cp;

    if (v->len == 0 || v->len > max) {
        return NGX_ERROR;
    }

    p = v->data;
    last = v->data + v->len;

    while (p < last) {

        if (*p >= 0x80) {
            /* invalid UTF-8, or a C1 control character */
            cp = ngx_utf8_decode(&p, last - p);

            if (cp > 0x10ffff || (cp >= 0x80 && cp <= 0x9f)) {
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


/*
 * The visitor's keys, all under the hash tag {vid} and with the
 * retention TTL.  A brand-new id gets none: the event is counted and
 * streamed, and the visitor's keys start when the cookie comes back
 * (clients that drop cookies never create any).
 */

static ngx_int_t
ngx_http_retarget_visitor_writes(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_ctx_t *ctx, ngx_http_retarget_event_t *ev)
{
    u_char                       *p;
    ngx_str_t                    *sku, qty, line;
    ngx_uint_t                    clear;
    ngx_http_retarget_ev_type_e   type;

    type = ev->conf->type;
    sku = &ev->v[ngx_http_retarget_p_sku];

    if (ngx_http_retarget_product_hash(b, ev) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ctx->new_visitor || ctx->visitor.len == 0) {
        return NGX_OK;
    }

    clear = (type == ngx_http_retarget_ev_cart_clear
             || type == ngx_http_retarget_ev_purchase);

    p = ngx_pnalloc(b->r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    b->ms.data = p;
    b->ms.len = ngx_sprintf(p, "%L", ngx_http_retarget_ms(clear)) - p;

    switch (type) {

    case ngx_http_retarget_ev_product:
        /* newest first, each sku once, capped */
        if (ngx_http_retarget_vcmd(b, "LREM", ":viewed", &ngx_http_retarget_s0,
                                   sku) == NULL
            || ngx_http_retarget_vcmd(b, "LPUSH", ":viewed", sku, NULL)
               == NULL
            || ngx_http_retarget_vcmd(b, "LTRIM", ":viewed",
                                      &ngx_http_retarget_s0,
                                      &ngx_http_retarget_viewed_last) == NULL
            || ngx_http_retarget_vexpire(b, ":viewed") != NGX_OK)
        {
            return NGX_ERROR;
        }

        /* what a browse reminder shows: only products with something */

        if ((ev->v[ngx_http_retarget_p_name].len
             || ev->v[ngx_http_retarget_p_price].len)
            && ngx_http_retarget_item(b, ev, 0) != NGX_OK)
        {
            return NGX_ERROR;
        }

        goto meta;

    case ngx_http_retarget_ev_cart_add:
        p = ngx_pnalloc(b->r->pool, NGX_INT64_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        qty.data = p;
        qty.len = ngx_sprintf(p, "%L", ev->qty) - p;

        /* the line in the meta holds the total the cart answers */

        if (ngx_http_retarget_vcmd(b, "HINCRBY", ":cart", sku, &qty) == NULL
            || ngx_http_retarget_ask_last(b) != NGX_OK
            || ngx_http_retarget_item(b, ev, 1) != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_http_retarget_cart_changed(b);

    case ngx_http_retarget_ev_cart_remove:
        line.len = sizeof("c:") - 1 + sku->len;
        line.data = ngx_pnalloc(b->r->pool, line.len);
        if (line.data == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(line.data, "c:%V", sku);

        if (ngx_http_retarget_vcmd(b, "HDEL", ":cart", sku, NULL) == NULL
            || ngx_http_retarget_vcmd(b, "HDEL", ":meta", &line, NULL)
               == NULL)
        {
            return NGX_ERROR;
        }

        return ngx_http_retarget_cart_changed(b);

    case ngx_http_retarget_ev_cart_clear:
    case ngx_http_retarget_ev_purchase:

        if (type == ngx_http_retarget_ev_purchase) {
            /*
             * Sent now, not behind the order check: the very next page
             * knows.  What the cart and its lines become waits for the
             * answer: a thank-you page loaded again clears nothing.
             */

            if (ngx_http_retarget_vcmd(b, "HSET", ":meta",
                                       &ngx_http_retarget_f_purchased,
                                       &b->now)
                == NULL)
            {
                return NGX_ERROR;
            }

            ngx_http_retarget_send_last(b);

            /* what led to it: the last click, the last reminder seen */

            if (ngx_http_retarget_vcmd(b, "HMGET", ":meta",
                                       &ngx_http_retarget_f_clicked,
                                       &ngx_http_retarget_f_seen)
                == NULL
                || ngx_http_retarget_ask_last(b) != NGX_OK)
            {
                return NGX_ERROR;
            }

        } else if (ngx_http_retarget_vcmd(b, "HSET", ":meta",
                                          &ngx_http_retarget_f_cart_updated,
                                          &b->now)
                   == NULL)
        {
            return NGX_ERROR;
        }

        /* the lines in the meta are stale from now on: see fetch.c */

        if (ngx_http_retarget_vcmd(b, "DEL", ":cart", NULL, NULL) == NULL
            || ngx_http_retarget_key_cmd(b, "ZREM", NULL, "carts", NULL,
                                         b->vid, NULL) == NULL
            || ngx_http_retarget_vcmd(b, "HSET", ":meta",
                                      &ngx_http_retarget_f_cart_cleared,
                                      &b->ms)
               == NULL)
        {
            return NGX_ERROR;
        }

        goto meta;

    case ngx_http_retarget_ev_checkout:
        if (ngx_http_retarget_vcmd(b, "HSET", ":meta",
                                   &ngx_http_retarget_f_checkout, &b->now)
            == NULL)
        {
            return NGX_ERROR;
        }

        goto meta;

    case ngx_http_retarget_ev_identify:
        if (ngx_http_retarget_vcmd(b, "HSET", ":meta",
                                   &ngx_http_retarget_f_user,
                                   &ev->v[ngx_http_retarget_p_user])
            == NULL)
        {
            return NGX_ERROR;
        }

        goto meta;

    default: /* custom events only reach the stream and the counters */
        return NGX_OK;
    }

meta:

    return ngx_http_retarget_touch(b);
}


/*
 * "SET <prefix>order:ID 1 NX EX <retention>": a purchase with an order
 * id is counted once, however often the thank-you page is loaded.
 */

static ngx_int_t
ngx_http_retarget_order_ask(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev)
{
    ngx_http_retarget_cmd_t  *cmd;

    cmd = ngx_http_retarget_key_cmd(b, "SET", NULL, "order:",
                                    &ev->v[ngx_http_retarget_p_order],
                                    NULL, NULL);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    ngx_http_retarget_arg(cmd, (u_char *) "1", 1);
    ngx_http_retarget_arg(cmd, (u_char *) "NX", 2);
    ngx_http_retarget_arg(cmd, (u_char *) "EX", 2);

    if (ngx_http_retarget_arg_num(b->r->pool, cmd, b->rmcf->retention)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_retarget_ask_last(b);
}


/* the product's own hash, for reminders and email workers */

static ngx_int_t
ngx_http_retarget_product_hash(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev)
{
    ngx_uint_t                k;
    ngx_http_retarget_cmd_t  *cmd;

    static ngx_uint_t  fields[] = {
        ngx_http_retarget_p_name, ngx_http_retarget_p_price,
        ngx_http_retarget_p_image, ngx_http_retarget_p_url
    };

    if (ev->v[ngx_http_retarget_p_sku].len == 0
        || (ev->v[ngx_http_retarget_p_name].len == 0
            && ev->v[ngx_http_retarget_p_price].len == 0))
    {
        return NGX_OK;
    }

    cmd = ngx_http_retarget_key_cmd(b, "HSET", NULL, "p:",
                                    &ev->v[ngx_http_retarget_p_sku], NULL,
                                    NULL);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    for (k = 0; k < sizeof(fields) / sizeof(fields[0]); k++) {
        if (ev->v[fields[k]].len) {
            ngx_http_retarget_arg(cmd,
                                  (u_char *) ngx_http_retarget_json_keys[
                                                                  fields[k]],
                                  ngx_strlen(ngx_http_retarget_json_keys[
                                                                  fields[k]]));
            ngx_http_retarget_arg(cmd, ev->v[fields[k]].data,
                                  ev->v[fields[k]].len);
        }
    }

    return NGX_OK;
}


/*
 * A cart line "MS\tQTY\tPRICE\tNAME\tIMAGE\tURL" or a viewed product
 * "MS\tPRICE\tNAME\tIMAGE\tURL", as field "c:SKU" or "v:SKU" of the
 * meta: what a reminder shows, read with the rest of the meta.  The QTY
 * of a cart line is the cart's answer: room is left for it, see
 * ngx_http_retarget_cart_done().
 */

static ngx_int_t
ngx_http_retarget_item(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev, ngx_uint_t cart)
{
    u_char     *p;
    ngx_str_t   field, value, *v;

    v = ev->v;

    field.len = sizeof("c:") - 1 + v[ngx_http_retarget_p_sku].len;
    field.data = ngx_pnalloc(b->r->pool, field.len);

    value.len = b->ms.len + sizeof("\t\t\t\t") - 1
                + v[ngx_http_retarget_p_price].len
                + v[ngx_http_retarget_p_name].len
                + v[ngx_http_retarget_p_image].len
                + v[ngx_http_retarget_p_url].len
                + (cart ? NGX_INT64_LEN + 1 : 0);
    value.data = ngx_pnalloc(b->r->pool, value.len);

    if (field.data == NULL || value.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(field.data, "%c:%V", cart ? 'c' : 'v',
                &v[ngx_http_retarget_p_sku]);

    p = ngx_sprintf(value.data, "%V\t", &b->ms);

    if (cart) {
        b->gap = p - value.data;
        ngx_memset(p, '0', NGX_INT64_LEN);
        p += NGX_INT64_LEN;
        *p++ = '\t';
    }

    ngx_sprintf(p, "%V\t%V\t%V\t%V",
                &v[ngx_http_retarget_p_price], &v[ngx_http_retarget_p_name],
                &v[ngx_http_retarget_p_image], &v[ngx_http_retarget_p_url]);

    if (ngx_http_retarget_vcmd(b, "HSET", ":meta", &field, &value) == NULL) {
        return NGX_ERROR;
    }

    if (cart) {
        b->line = b->cmds->nelts - 1;
    }

    return NGX_OK;
}


/* the command just built is an ask: its answer decides the writes */

static ngx_int_t
ngx_http_retarget_ask_last(ngx_http_retarget_batch_t *b)
{
    ngx_http_retarget_cmd_t  *cmd;

    cmd = ngx_array_push(b->asks);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    b->cmds->nelts--;
    *cmd = ((ngx_http_retarget_cmd_t *) b->cmds->elts)[b->cmds->nelts];

    return NGX_OK;
}


/* the command just built goes out now, ahead of the event's others */

static void
ngx_http_retarget_send_last(ngx_http_retarget_batch_t *b)
{
    b->cmds->nelts--;

    ngx_http_retarget_send_cmds(
        (ngx_http_retarget_cmd_t *) b->cmds->elts + b->cmds->nelts, 1);
}


/*
 * Now in milliseconds, the time of items and of "cart_cleared".  A line
 * is stale when it is not newer than the clear, so within a millisecond
 * (a location that logs cart_clear, then cart_add) what this worker
 * stamps keeps the order it happens in: a line after a clear is a
 * millisecond newer, a clear after a line is not older.
 */

static int64_t
ngx_http_retarget_ms(ngx_uint_t clear)
{
    int64_t                        ms;
    ngx_time_t                    *tp;
    ngx_http_retarget_events_t  *rc;

    rc = ngx_http_retarget_events;

    tp = ngx_timeofday();
    ms = (int64_t) tp->sec * 1000 + tp->msec;

    if (clear) {
        rc->cleared_ms = ngx_max(ms, rc->last_ms);
        return rc->cleared_ms;
    }

    ms = ngx_max(ms, rc->cleared_ms + 1);
    rc->last_ms = ngx_max(ms, rc->last_ms);

    return ms;
}


/* the cart changed: its TTL, the abandoned-cart queue, the meta */

static ngx_int_t
ngx_http_retarget_cart_changed(ngx_http_retarget_batch_t *b)
{
    ngx_http_retarget_cmd_t  *cmd;

    if (ngx_http_retarget_vexpire(b, ":cart") != NGX_OK) {
        return NGX_ERROR;
    }

    cmd = ngx_http_retarget_key_cmd(b, "ZADD", NULL, "carts", NULL, &b->now,
                                    b->vid);
    if (cmd == NULL
        || ngx_http_retarget_vcmd(b, "HSET", ":meta",
                                  &ngx_http_retarget_f_cart_updated, &b->now)
           == NULL)
    {
        return NGX_ERROR;
    }

    return ngx_http_retarget_touch(b);
}


/* last_seen, first_seen once, and the retention TTL of the meta */

static ngx_int_t
ngx_http_retarget_touch(ngx_http_retarget_batch_t *b)
{
    if (ngx_http_retarget_vcmd(b, "HSET", ":meta",
                               &ngx_http_retarget_f_last_seen, &b->now)
        == NULL
        || ngx_http_retarget_vcmd(b, "HSETNX", ":meta",
                                  &ngx_http_retarget_f_first_seen, &b->now)
           == NULL)
    {
        return NGX_ERROR;
    }

    return ngx_http_retarget_vexpire(b, ":meta");
}


/* NAME <prefix>{vid}<suffix> [a1 [a2]] */

static ngx_http_retarget_cmd_t *
ngx_http_retarget_vcmd(ngx_http_retarget_batch_t *b, const char *name,
    char *suffix, ngx_str_t *a1, ngx_str_t *a2)
{
    return ngx_http_retarget_key_cmd(b, name, b->vid, suffix, NULL, a1, a2);
}


static ngx_http_retarget_cmd_t *
ngx_http_retarget_key_cmd(ngx_http_retarget_batch_t *b, const char *name,
    ngx_str_t *vid, char *suffix, ngx_str_t *tail, ngx_str_t *a1,
    ngx_str_t *a2)
{
    ngx_http_retarget_cmd_t  *cmd;

    cmd = ngx_http_retarget_cmd(b->cmds, name);
    if (cmd == NULL
        || ngx_http_retarget_arg_key(b->r->pool, b->rmcf, cmd, vid, suffix,
                                     tail)
           != NGX_OK)
    {
        return NULL;
    }

    if (a1 != NULL) {
        ngx_http_retarget_arg(cmd, a1->data, a1->len);
    }

    if (a2 != NULL) {
        ngx_http_retarget_arg(cmd, a2->data, a2->len);
    }

    return cmd;
}


static ngx_int_t
ngx_http_retarget_vexpire(ngx_http_retarget_batch_t *b, char *suffix)
{
    return ngx_http_retarget_expire(b->r, b->cmds, b->vid, suffix);
}


/*
 * XADD <prefix>events MAXLEN ~ N * e <json>; the JSON carries an id of
 * its own, so consumers can drop duplicates however the entry reached
 * them.
 */

static ngx_int_t
ngx_http_retarget_stream(ngx_http_request_t *r, ngx_http_retarget_ctx_t *ctx,
    ngx_str_t *type, ngx_http_retarget_event_t *ev, ngx_array_t *cmds)
{
    char                           *dump;
    u_char                          id[64], *p;
    size_t                          len;
    json_t                         *e, *s;
    ngx_uint_t                      k;
    static ngx_uint_t               seq;
    ngx_http_retarget_cmd_t        *cmd;
    ngx_http_retarget_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    if (rmcf->stream_maxlen == 0) {
        return NGX_OK;
    }

    e = json_object();
    if (e == NULL) {
        return NGX_ERROR;
    }

    /* unique across workers, restarts and the nginx servers of a shop */
    p = ngx_sprintf(id, "%s-%xi", ngx_http_retarget_events->id_prefix,
                    seq++);

    json_object_set_new(e, "id", json_stringn((char *) id, p - id));
    json_object_set_new(e, "type", json_stringn((char *) type->data,
                                                type->len));
    json_object_set_new(e, "ts", json_integer(ngx_time()));

    if (ctx->visitor.len) {
        json_object_set_new(e, "vid",
                            json_stringn((char *) ctx->visitor.data,
                                         ctx->visitor.len));
    }

    json_object_set_new(e, "new", json_boolean(ctx->new_visitor));

    /* escaped: a URI need not be UTF-8, the JSON must be */

    len = r->uri.len + 2 * ngx_escape_uri(NULL, r->uri.data, r->uri.len,
                                          NGX_ESCAPE_URI);
    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        json_decref(e);
        return NGX_ERROR;
    }

    ngx_escape_uri(p, r->uri.data, r->uri.len, NGX_ESCAPE_URI);
    json_object_set_new(e, "uri", json_stringn((char *) p, len));

    if (ev != NULL && ev->conf->params[ngx_http_retarget_p_qty] != NULL) {
        json_object_set_new(e, "qty", json_integer(ev->qty));
    }

    for (k = 0; ev != NULL && k < ngx_http_retarget_p_if; k++) {

        if (ev->v[k].len == 0 || k == ngx_http_retarget_p_qty) {
            continue;
        }

        /* NULL for bytes that are not UTF-8: the event is refused */
        s = json_stringn((char *) ev->v[k].data, ev->v[k].len);
        if (s == NULL) {
            json_decref(e);
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "retarget: event \"%V\" rejected: \"%s\" is "
                          "not UTF-8", type, ngx_http_retarget_json_keys[k]);
            return NGX_DECLINED;
        }

        json_object_set_new(e, ngx_http_retarget_json_keys[k], s);
    }

    dump = json_dumps(e, JSON_COMPACT);
    json_decref(e);

    if (dump == NULL) {
        return NGX_ERROR;
    }

    len = ngx_strlen(dump);
    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        free(dump);
        return NGX_ERROR;
    }

    ngx_memcpy(p, dump, len);
    free(dump);

    cmd = ngx_http_retarget_cmd(cmds, "XADD");
    if (cmd == NULL
        || ngx_http_retarget_arg_key(r->pool, rmcf, cmd, NULL, "events", NULL)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_retarget_arg(cmd, (u_char *) "MAXLEN", 6);
    ngx_http_retarget_arg(cmd, (u_char *) "~", 1);

    if (ngx_http_retarget_arg_num(r->pool, cmd, rmcf->stream_maxlen)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_retarget_arg(cmd, (u_char *) "*", 1);
    ngx_http_retarget_arg(cmd, (u_char *) "e", 1);
    ngx_http_retarget_arg(cmd, p, len);

    return NGX_OK;
}


/* a cart_add of a returning visitor: "HINCRBY" asks, the line follows */

static ngx_int_t
ngx_http_retarget_cart_op(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev)
{
    ngx_http_retarget_op_t       *op;
    ngx_http_retarget_cart_op_t  *co;

    op = ngx_http_retarget_op_create(sizeof(ngx_http_retarget_cart_op_t), b);
    if (op == NULL) {
        return NGX_ERROR;
    }

    co = (ngx_http_retarget_cart_op_t *) op;
    co->line = b->line;
    co->gap = b->gap;

    /* unasked (the link is down), the cart's write still goes in line */
    op->keep = 1;
    op->answer = ngx_http_retarget_cart_answer;
    op->done = ngx_http_retarget_cart_done;

    ngx_http_retarget_count(&ev->conf->counter, 1);

    ngx_http_retarget_op_run(op);

    return NGX_OK;
}


static void
ngx_http_retarget_cart_answer(ngx_http_retarget_op_t *op, ngx_uint_t i,
    redisReply *reply)
{
    ngx_http_retarget_cart_op_t *co = (ngx_http_retarget_cart_op_t *) op;

    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER
        && reply->integer > 0)
    {
        co->qty = reply->integer;
    }
}


static void
ngx_http_retarget_cart_done(ngx_http_retarget_op_t *op)
{
    ngx_http_retarget_cart_op_t *co = (ngx_http_retarget_cart_op_t *) op;

    u_char                   *v, *p;
    size_t                    tail;
    ngx_http_retarget_cmd_t  *writes, *line;

    writes = op->cmds + op->nasks;
    line = &writes[co->line];

    ngx_http_retarget_send_cmds(writes, co->line);

    /*
     * Without the total (no link, an error reply) the line cannot be
     * right: it is left out, and the cart stays as Redis has it.
     */

    if (co->qty) {
        v = (u_char *) line->argv[3];
        tail = line->len[3] - co->gap - NGX_INT64_LEN;

        p = ngx_sprintf(v + co->gap, "%L", co->qty);
        ngx_memmove(p, v + co->gap + NGX_INT64_LEN, tail);
        line->len[3] = p + tail - v;

        ngx_http_retarget_send_cmds(line, 1);
    }

    ngx_http_retarget_send_cmds(line + 1,
                                op->ncmds - op->nasks - co->line - 1);
}


/*
 * A purchase asks "SET order NX" when it has an order id, and for a
 * returning visitor what led to it: "HMGET meta clicked seen".  With the
 * answers in, it is counted (when the order is new, or unknown: counted
 * rather than lost), attributed, and its writes follow.
 */

static ngx_int_t
ngx_http_retarget_purchase_op(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev)
{
    ngx_http_retarget_op_t        *op;
    ngx_http_retarget_loc_conf_t  *rlcf;
    ngx_http_retarget_purchase_t  *p;

    rlcf = ngx_http_get_module_loc_conf(b->r, ngx_http_retarget_module);

    op = ngx_http_retarget_op_create(sizeof(ngx_http_retarget_purchase_t), b);
    if (op == NULL) {
        return NGX_ERROR;
    }

    p = (ngx_http_retarget_purchase_t *) op;
    p->rmcf = b->rmcf;
    p->counter = &ev->conf->counter;
    p->cents = ev->cents;
    p->now = ngx_time();

    /* the request is gone when the answers come */
    p->click_window = rlcf->campaign.click_window;
    p->view_window = rlcf->campaign.view_window;

    p->order = (ev->v[ngx_http_retarget_p_order].len != 0);

    /* unasked, the order is still recorded: a reload is not counted */
    op->keep = p->order;
    op->answer = ngx_http_retarget_purchase_answer;
    op->done = ngx_http_retarget_purchase_done;

    ngx_http_retarget_op_run(op);

    return NGX_OK;
}


static void
ngx_http_retarget_purchase_answer(ngx_http_retarget_op_t *op, ngx_uint_t i,
    redisReply *reply)
{
    ngx_http_retarget_purchase_t *p = (ngx_http_retarget_purchase_t *) op;

    if (i == 0 && p->order) {
        /* nil: counted already; an error or no answer: counted now */
        p->duplicate = (reply != NULL && reply->type == REDIS_REPLY_NIL);
        return;
    }

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2)
    {
        return;
    }

    /* a click on a reminder first, else a reminder seen */

    p->conversions = ngx_http_retarget_attribute(p, reply->element[0], 1);

    if (p->conversions == NULL) {
        p->conversions = ngx_http_retarget_attribute(p, reply->element[1],
                                                     0);
    }
}


/*
 * "TS VARIANT" of a click or of a reminder seen: the counters of a
 * variant of this configuration, if TS is within the window.  A holdout
 * visitor saw no reminder: the time it was eligible for one counts as
 * "seen", and its purchases are the conversions of the holdout.
 */

static ngx_str_t *
ngx_http_retarget_attribute(ngx_http_retarget_purchase_t *p,
    redisReply *stamp, ngx_uint_t click)
{
    u_char                            *sp, *last, *name;
    time_t                             ts;
    ngx_uint_t                         holdout;
    ngx_http_retarget_variant_name_t  *vn;

    if (stamp->type != REDIS_REPLY_STRING) {
        return NULL;
    }

    last = (u_char *) stamp->str + stamp->len;
    sp = ngx_strlchr((u_char *) stamp->str, last, ' ');

    if (sp == NULL) {
        return NULL;
    }

    ts = ngx_atotm((u_char *) stamp->str, sp - (u_char *) stamp->str);

    if (ts == NGX_ERROR
        || p->now - ts > (click ? p->click_window : p->view_window))
    {
        return NULL;
    }

    name = sp + 1;

    vn = ngx_http_retarget_variant_find(p->rmcf, name, last - name);

    if (vn == NULL) {
        return NULL;
    }

    holdout = (vn->name.len == ngx_http_retarget_holdout_name.len
               && ngx_strncmp(vn->name.data,
                              ngx_http_retarget_holdout_name.data,
                              vn->name.len)
                  == 0);

    if (click && holdout) {
        /* no reminder to click was shown: not a click */
        return NULL;
    }

    if (click || holdout) {
        p->revenue = &vn->counters[ngx_http_retarget_vc_revenue];
        return &vn->counters[ngx_http_retarget_vc_conversions];
    }

    p->revenue = &vn->counters[ngx_http_retarget_vc_view_revenue];
    return &vn->counters[ngx_http_retarget_vc_view_conversions];
}


static void
ngx_http_retarget_purchase_done(ngx_http_retarget_op_t *op)
{
    ngx_http_retarget_purchase_t *p = (ngx_http_retarget_purchase_t *) op;

    if (p->duplicate) {
        ngx_http_retarget_count(&ngx_http_retarget_c_duplicate, 1);
        return;
    }

    ngx_http_retarget_count(p->counter, 1);

    if (p->cents) {
        ngx_http_retarget_count(&ngx_http_retarget_c_revenue, p->cents);
    }

    if (p->conversions != NULL) {
        ngx_http_retarget_count(p->conversions, 1);

        if (p->cents) {
            ngx_http_retarget_count(p->revenue, p->cents);
        }
    }

    ngx_http_retarget_send_cmds(op->cmds + op->nasks,
                                op->ncmds - op->nasks);
}


/* the asks and the writes, with their arguments, in one allocation */

static ngx_http_retarget_op_t *
ngx_http_retarget_op_create(size_t size, ngx_http_retarget_batch_t *b)
{
    int                       a;
    u_char                   *p;
    size_t                    len;
    ngx_uint_t                i, n;
    ngx_http_retarget_op_t   *op;
    ngx_http_retarget_cmd_t  *c;

    /* the asks first, then the writes */

    c = ngx_array_push_n(b->asks, b->cmds->nelts);
    if (c == NULL) {
        return NULL;
    }

    ngx_memcpy(c, b->cmds->elts,
               b->cmds->nelts * sizeof(ngx_http_retarget_cmd_t));

    c = b->asks->elts;
    n = b->asks->nelts;

    len = size + n * sizeof(ngx_http_retarget_cmd_t);

    for (i = 0; i < n; i++) {
        for (a = 0; a < c[i].argc; a++) {
            len += c[i].len[a];
        }
    }

    op = ngx_alloc(len, b->r->connection->log);
    if (op == NULL) {
        return NULL;
    }

    ngx_memzero(op, size);

    op->ncmds = n;
    op->nasks = n - b->cmds->nelts;
    op->cmds = (ngx_http_retarget_cmd_t *) ((u_char *) op + size);
    p = (u_char *) (op->cmds + n);

    for (i = 0; i < n; i++) {
        op->cmds[i] = c[i];

        for (a = 0; a < c[i].argc; a++) {
            op->cmds[i].argv[a] = (const char *) p;
            p = ngx_cpymem(p, c[i].argv[a], c[i].len[a]);
        }
    }

    return op;
}


/*
 * The asks go out in the order of the worker's writes, and the last one
 * holds the link: until the op's writes have followed, what comes after
 * it waits, later ops too.  Their asks would otherwise overtake the
 * writes that this one has yet to make (a purchase's "DEL cart", then
 * the visitor's next cart_add).  An ask that cannot be sent (no link)
 * gets no answer.
 */

static void
ngx_http_retarget_op_run(ngx_http_retarget_op_t *op)
{
    ngx_http_retarget_cmd_t    *c;
    ngx_http_retarget_redis_t  *rds;

    rds = ngx_http_retarget_redis_get();

    for ( /* void */ ; op->asked < op->nasks; op->asked++) {
        c = &op->cmds[op->asked];

        if (ngx_http_retarget_redis_read_ordered(rds, c->argc, c->argv,
                                                 c->len,
                                                 ngx_http_retarget_op_answered,
                                                 op,
                                                 op->asked == op->nasks - 1)
            != NGX_OK)
        {
            break;
        }
    }

    if (op->asked == 0) {
        ngx_http_retarget_op_finish(op);
    }
}


static void
ngx_http_retarget_op_answered(void *data, redisReply *reply)
{
    ngx_http_retarget_op_t *op = data;

    op->answer(op, op->answered, reply);

    if (++op->answered == op->asked) {
        ngx_http_retarget_op_finish(op);
    }
}


/* the answers are in, or none can come for the asks that are left */

static void
ngx_http_retarget_op_finish(ngx_http_retarget_op_t *op)
{
    ngx_uint_t  i;

    for (i = op->asked; i < op->nasks; i++) {
        op->answer(op, i, NULL);

        if (op->keep & ((ngx_uint_t) 1 << i)) {
            ngx_http_retarget_send_cmds(&op->cmds[i], 1);
        }
    }

    op->done(op);

    ngx_free(op);
}


void
ngx_http_retarget_send_cmds(ngx_http_retarget_cmd_t *cmds, ngx_uint_t n)
{
    ngx_uint_t                  i;
    ngx_http_retarget_redis_t  *rds;

    rds = ngx_http_retarget_redis_get();

    for (i = 0; i < n; i++) {
        (void) ngx_http_retarget_redis_write(rds, cmds[i].argc, cmds[i].argv,
                                             cmds[i].len);
    }
}


ngx_http_retarget_cmd_t *
ngx_http_retarget_cmd(ngx_array_t *cmds, const char *name)
{
    ngx_http_retarget_cmd_t  *cmd;

    cmd = ngx_array_push(cmds);
    if (cmd == NULL) {
        return NULL;
    }

    cmd->argc = 0;
    ngx_http_retarget_arg(cmd, (u_char *) name, ngx_strlen(name));

    return cmd;
}


void
ngx_http_retarget_arg(ngx_http_retarget_cmd_t *cmd, u_char *data, size_t len)
{
    if (cmd->argc == NGX_HTTP_RETARGET_MAX_ARGS) {
        /* the commands built here never have that many */
        return;
    }

    cmd->argv[cmd->argc] = (const char *) data;
    cmd->len[cmd->argc] = len;
    cmd->argc++;
}


/* "<prefix>{<vid>}<suffix>", or "<prefix><suffix><tail>" without a vid */

ngx_int_t
ngx_http_retarget_arg_key(ngx_pool_t *pool,
    ngx_http_retarget_main_conf_t *rmcf, ngx_http_retarget_cmd_t *cmd,
    ngx_str_t *vid, char *suffix, ngx_str_t *tail)
{
    u_char  *key, *p;
    size_t   len;

    len = rmcf->redis.prefix.len + ngx_strlen(suffix)
          + (vid ? vid->len + 2 : 0) + (tail ? tail->len : 0);

    key = ngx_pnalloc(pool, len);
    if (key == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(key, rmcf->redis.prefix.data, rmcf->redis.prefix.len);

    if (vid) {
        *p++ = '{';
        p = ngx_cpymem(p, vid->data, vid->len);
        *p++ = '}';
    }

    p = ngx_cpymem(p, suffix, ngx_strlen(suffix));

    if (tail) {
        p = ngx_cpymem(p, tail->data, tail->len);
    }

    ngx_http_retarget_arg(cmd, key, p - key);

    return NGX_OK;
}


ngx_int_t
ngx_http_retarget_arg_num(ngx_pool_t *pool, ngx_http_retarget_cmd_t *cmd,
    int64_t n)
{
    u_char  *p;

    p = ngx_pnalloc(pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_http_retarget_arg(cmd, p, ngx_sprintf(p, "%L", n) - p);

    return NGX_OK;
}


static ngx_int_t
ngx_http_retarget_expire(ngx_http_request_t *r, ngx_array_t *cmds,
    ngx_str_t *vid, char *suffix)
{
    ngx_http_retarget_cmd_t        *cmd;
    ngx_http_retarget_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    cmd = ngx_http_retarget_cmd(cmds, "EXPIRE");
    if (cmd == NULL
        || ngx_http_retarget_arg_key(r->pool, rmcf, cmd, vid, suffix, NULL)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_retarget_arg_num(r->pool, cmd, rmcf->retention);
}


/*
 * Deletes every key of the visitor, and its entry in the abandoned-cart
 * queue: the "forget" and "optout" endpoints.  One DEL for all the keys,
 * which share a hash tag and so a Redis Cluster slot.
 */

ngx_int_t
ngx_http_retarget_forget(ngx_http_request_t *r, ngx_str_t *visitor)
{
    ngx_array_t                    *cmds;
    ngx_http_retarget_cmd_t        *cmd;
    ngx_http_retarget_main_conf_t  *rmcf;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    if (rmcf->redis.name.len == 0) {
        return NGX_OK;
    }

    cmds = ngx_array_create(r->pool, 2, sizeof(ngx_http_retarget_cmd_t));
    if (cmds == NULL) {
        return NGX_ERROR;
    }

    cmd = ngx_http_retarget_cmd(cmds, "DEL");
    if (cmd == NULL
        || ngx_http_retarget_arg_key(r->pool, rmcf, cmd, visitor, ":cart",
                                     NULL) != NGX_OK
        || ngx_http_retarget_arg_key(r->pool, rmcf, cmd, visitor, ":meta",
                                     NULL) != NGX_OK
        || ngx_http_retarget_arg_key(r->pool, rmcf, cmd, visitor, ":viewed",
                                     NULL) != NGX_OK)
    {
        return NGX_ERROR;
    }

    cmd = ngx_http_retarget_cmd(cmds, "ZREM");
    if (cmd == NULL
        || ngx_http_retarget_arg_key(r->pool, rmcf, cmd, NULL, "carts", NULL)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_retarget_arg(cmd, visitor->data, visitor->len);

    ngx_http_retarget_send_cmds(cmds->elts, cmds->nelts);

    return NGX_OK;
}
