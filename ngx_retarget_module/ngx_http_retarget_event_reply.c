
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The writes of an event that wait for an answer ("ops"): a cart line
 * needs the cart's new quantity (HINCRBY), a purchase asks whether its
 * order is new (SET NX) and what reminder led to it (attribution).
 * Their writes follow the answer, and the worker's later writes wait
 * behind them.
 */


#include "ngx_http_retarget_event.h"
#include "ngx_http_retarget_campaign.h"
#include "ngx_http_retarget_cmd.h"
#include "ngx_http_retarget_counters.h"
#include "ngx_http_retarget_escape.h"
#include "ngx_http_retarget_redis.h"
#include "ngx_http_retarget_store.h"


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


/*
 * A cart_add: the line in the meta holds the cart's new quantity, at
 * most NGX_HTTP_RETARGET_QTY_MAX; it is written only while the cart
 * has at most NGX_HTTP_RETARGET_CART_MAX lines (its own counted) and
 * the meta has room (NGX_HTTP_RETARGET_META_MAX).
 */
typedef struct {
    ngx_http_retarget_op_t           op;
    ngx_uint_t                       line;      /* its write */
    size_t                           gap;       /* where its QTY goes */
    int64_t                          added;     /* the event's qty */
    int64_t                          qty;       /* 0: no answer */
    int64_t                          lines;     /* HLEN cart, -1: none */
    int64_t                          fields;    /* HLEN meta, -1: none */
    ngx_str_t                       *counter;
} ngx_http_retarget_cart_op_t;


/* a product view: its v:SKU line needs room in the meta */
typedef struct {
    ngx_http_retarget_op_t           op;
    ngx_uint_t                       line;      /* its write */
    int64_t                          fields;    /* HLEN meta, -1: none */
    ngx_uint_t                       exists;    /* HEXISTS meta v:SKU */
    ngx_str_t                       *counter;
} ngx_http_retarget_viewed_op_t;


/*
 * cart_remove line= and cart_update: the line's script answers the new
 * quantity, or -1 when the visitor has no such line (nothing changed).
 */
typedef struct {
    ngx_http_retarget_op_t           op;
    int64_t                          qty;       /* -2: no answer */
    ngx_str_t                       *counter;
    ngx_str_t                       *event;     /* its name, to log */
    ngx_str_t                        uri;       /* in where, cut */
    u_char                           where[NGX_HTTP_RETARGET_LOG_VALUE_MAX
                                           + 1];
} ngx_http_retarget_line_op_t;


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
    ngx_http_retarget_variant_name_t *attributed;  /* that arm */
    ngx_http_retarget_variant_name_t *converted;   /* the lift's arm */
    ngx_str_t                        visitor;   /* empty: a new visitor */
    u_char                           vid[NGX_HTTP_RETARGET_VID_LEN];
    unsigned                         order:1;   /* asks "SET order NX" */
    unsigned                         duplicate:1;
    unsigned                         by_click:1;
} ngx_http_retarget_purchase_t;


/* the largest amount squared into squares:ARM, in units */
#define NGX_HTTP_RETARGET_SQUARE_UNITS_MAX  10000000


static void ngx_http_retarget_cart_answer(ngx_http_retarget_op_t *op,
    ngx_uint_t i, redisReply *reply);
static void ngx_http_retarget_cart_done(ngx_http_retarget_op_t *op);
static void ngx_http_retarget_line_answer(ngx_http_retarget_op_t *op,
    ngx_uint_t i, redisReply *reply);
static void ngx_http_retarget_line_done(ngx_http_retarget_op_t *op);
static void ngx_http_retarget_viewed_answer(ngx_http_retarget_op_t *op,
    ngx_uint_t i, redisReply *reply);
static void ngx_http_retarget_viewed_done(ngx_http_retarget_op_t *op);
static void ngx_http_retarget_purchase_answer(ngx_http_retarget_op_t *op,
    ngx_uint_t i, redisReply *reply);
static ngx_str_t *ngx_http_retarget_attribute(
    ngx_http_retarget_purchase_t *p, redisReply *stamp, ngx_uint_t click);
static ngx_http_retarget_variant_name_t *ngx_http_retarget_stamp_arm(
    ngx_http_retarget_purchase_t *p, redisReply *stamp, time_t window);
static void ngx_http_retarget_purchase_done(ngx_http_retarget_op_t *op);
static void ngx_http_retarget_buyer(ngx_http_retarget_purchase_t *p);
static void ngx_http_retarget_converters(ngx_http_retarget_purchase_t *p);
static ngx_http_retarget_op_t *ngx_http_retarget_op_create(size_t size,
    ngx_http_retarget_batch_t *b);
static void ngx_http_retarget_op_run(ngx_http_retarget_op_t *op);
static void ngx_http_retarget_op_answered(void *data, redisReply *reply);
static void ngx_http_retarget_op_finish(ngx_http_retarget_op_t *op);


static ngx_str_t  ngx_http_retarget_c_duplicate =
    ngx_string("purchases_duplicate");
static ngx_str_t  ngx_http_retarget_no_counter = ngx_string("none");

/* the bounds of a visitor's data (ngx_http_retarget_store.h) */
static ngx_str_t  ngx_http_retarget_c_cart_full = ngx_string("cart_full");
static ngx_str_t  ngx_http_retarget_c_meta_full = ngx_string("meta_full");
static ngx_str_t  ngx_http_retarget_c_qty_clamped =
    ngx_string("qty_clamped");

/*
 * A line the visitor does not have (cart_remove line=, cart_update): the
 * event is rejected, counted "rejected" and by its reason
 */
static ngx_str_t  ngx_http_retarget_c_rejected = ngx_string("rejected");
static ngx_str_t  ngx_http_retarget_c_unknown_line =
    ngx_string("rejected:unknown_line");
static ngx_str_t  ngx_http_retarget_unknown_line = ngx_string("unknown_line");
static ngx_str_t  ngx_http_retarget_p_sku_name = ngx_string("sku");
static ngx_str_t  ngx_http_retarget_p_line_name = ngx_string("line");

/* the daily revenue, added by purchases with and without an order id */
ngx_str_t  ngx_http_retarget_c_revenue = ngx_string("revenue");


/* a cart_add of a returning visitor: "HINCRBY" asks, the line follows */

ngx_int_t
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
    co->added = ev->qty;
    co->lines = -1;
    co->fields = -1;
    co->counter = &ev->conf->counter;

    /* unasked (the link is down), the cart's write still goes in line */
    op->keep = 1;
    op->answer = ngx_http_retarget_cart_answer;
    op->done = ngx_http_retarget_cart_done;

    ngx_http_retarget_op_run(op);

    return NGX_OK;
}


static void
ngx_http_retarget_cart_answer(ngx_http_retarget_op_t *op, ngx_uint_t i,
    redisReply *reply)
{
    ngx_http_retarget_cart_op_t *co = (ngx_http_retarget_cart_op_t *) op;

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "retarget event: cart answer %ui unusable, type %d",
                       i, reply ? reply->type : -1);
        return;
    }

    switch (i) {

    case 0:
        if (reply->integer > 0) {
            co->qty = reply->integer;
        }

        break;

    case 1:
        co->lines = reply->integer;
        break;

    default:
        co->fields = reply->integer;
        break;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "retarget event: cart answer %ui: %L", i,
                   (int64_t) reply->integer);
}


static void
ngx_http_retarget_cart_done(ngx_http_retarget_op_t *op)
{
    ngx_http_retarget_cart_op_t *co = (ngx_http_retarget_cart_op_t *) op;

    int                       v;
    u_char                    num[NGX_INT64_LEN];
    ngx_http_retarget_cmd_t  *writes, *line, fix;

    writes = op->cmds + op->nasks;
    line = &writes[co->line];

    /*
     * A cart of more than CART_MAX lines, or a meta with no room: the
     * line is not written, whatever the quantity, and nothing else of
     * the event.  Each add counts its own line (HLEN after HINCRBY), so
     * simultaneous adds never leave more than CART_MAX lines.  A total
     * beyond what was added does not make the line an old one: a
     * simultaneous add of the same new sku may have made it, and be
     * refusing it now.  Only the add that made the line (its total is
     * what was added) takes it back out of the cart: the others leave
     * an older line's quantity to the cart, and the HDEL of its maker
     * to a new one.
     */

    if (co->qty != 0
        && (co->lines > NGX_HTTP_RETARGET_CART_MAX
            || co->fields >= NGX_HTTP_RETARGET_META_MAX))
    {
        ngx_log_debug4(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "retarget event: cart full, %L lines, %L meta "
                       "fields, qty %L of %L added: refused",
                       co->lines, co->fields, co->qty, co->added);

        if (co->qty == co->added) {
            /* "HDEL cart SKU", of the HINCRBY's key and field */
            ngx_http_retarget_cmd_init(&fix, "HDEL");
            ngx_http_retarget_arg(&fix, (u_char *) op->cmds[0].argv[1],
                                  op->cmds[0].len[1]);
            ngx_http_retarget_arg(&fix, (u_char *) op->cmds[0].argv[2],
                                  op->cmds[0].len[2]);

            ngx_http_retarget_send_cmds(&fix, 1);
        }

        ngx_http_retarget_count(&ngx_http_retarget_c_cart_full, 1);

        return;
    }

    ngx_http_retarget_count(co->counter, 1);

    ngx_http_retarget_send_cmds(writes, co->line);

    if (co->qty > NGX_HTTP_RETARGET_QTY_MAX) {
        /* "HSET cart SKU QTY_MAX": the cart agrees with its line */

        co->qty = NGX_HTTP_RETARGET_QTY_MAX;

        ngx_http_retarget_cmd_init(&fix, "HSET");
        ngx_http_retarget_arg(&fix, (u_char *) op->cmds[0].argv[1],
                              op->cmds[0].len[1]);
        ngx_http_retarget_arg(&fix, (u_char *) op->cmds[0].argv[2],
                              op->cmds[0].len[2]);
        ngx_http_retarget_arg(&fix, num,
                              ngx_sprintf(num, "%L", co->qty) - num);

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "retarget event: cart quantity clamped to %L",
                       co->qty);

        ngx_http_retarget_send_cmds(&fix, 1);
        ngx_http_retarget_count(&ngx_http_retarget_c_qty_clamped, 1);
    }

    /*
     * Without the total (no link, an error reply) the line cannot be
     * right: it is left out, and the cart stays as Redis has it.
     */

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "retarget event: cart line with qty %L, %ui writes",
                   co->qty, op->ncmds - op->nasks);

    if (co->qty) {
        /*
         * The value is its last argument: of an HSET, or of the EVAL
         * that keeps the line's id (ngx_http_retarget_item_set()).
         */
        v = line->argc - 1;

        line->len[v] = ngx_http_retarget_line_qty((u_char *) line->argv[v],
                                                  line->len[v], co->gap,
                                                  co->qty);

        ngx_http_retarget_send_cmds(line, 1);
    }

    ngx_http_retarget_send_cmds(line + 1,
                                op->ncmds - op->nasks - co->line - 1);
}


/* cart_remove line=, cart_update: the script asks, the rest follows */

ngx_int_t
ngx_http_retarget_line_op(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev)
{
    ngx_http_retarget_op_t       *op;
    ngx_http_retarget_line_op_t  *lo;

    op = ngx_http_retarget_op_create(sizeof(ngx_http_retarget_line_op_t), b);
    if (op == NULL) {
        return NGX_ERROR;
    }

    lo = (ngx_http_retarget_line_op_t *) op;
    lo->qty = -2;
    lo->counter = &ev->conf->counter;
    lo->event = &ev->conf->name;

    /*
     * The request is gone when the answer comes: enough of its URI to
     * log (one byte more than a log shows, so that the cut shows).
     */
    lo->uri.len = ngx_min(b->r->uri.len, sizeof(lo->where));
    lo->uri.data = lo->where;
    ngx_memcpy(lo->where, b->r->uri.data, lo->uri.len);

    op->answer = ngx_http_retarget_line_answer;
    op->done = ngx_http_retarget_line_done;

    ngx_http_retarget_op_run(op);

    return NGX_OK;
}


static void
ngx_http_retarget_line_answer(ngx_http_retarget_op_t *op, ngx_uint_t i,
    redisReply *reply)
{
    ngx_http_retarget_line_op_t *lo = (ngx_http_retarget_line_op_t *) op;

    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER) {
        lo->qty = reply->integer;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "retarget event: cart line answer %d, qty %L",
                   reply ? reply->type : -1, lo->qty);
}


static void
ngx_http_retarget_line_done(ngx_http_retarget_op_t *op)
{
    ngx_http_retarget_line_op_t *lo = (ngx_http_retarget_line_op_t *) op;

    ngx_str_t                *param, value;
    ngx_http_retarget_cmd_t  *eval;

    if (lo->qty == -1) {
        /*
         * The script's ARGV[1] and ARGV[2]: the sku, the line id.  The
         * offending value is the sku when the line was looked up by it.
         */
        eval = &op->cmds[0];

        if (eval->len[6]) {
            param = &ngx_http_retarget_p_sku_name;
            value.data = (u_char *) eval->argv[6];
            value.len = eval->len[6];

        } else {
            param = &ngx_http_retarget_p_line_name;
            value.data = (u_char *) eval->argv[7];
            value.len = eval->len[7];
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "retarget event: no cart line of %V \"%V\"",
                       param, &value);

        ngx_http_retarget_count(&ngx_http_retarget_c_rejected, 1);
        ngx_http_retarget_count(&ngx_http_retarget_c_unknown_line, 1);

        ngx_http_retarget_reason_log(ngx_cycle->log, lo->event, &lo->uri,
                                     &ngx_http_retarget_unknown_line, NULL,
                                     param, &value);
        return;
    }

    /* no answer (no link, an error): counted, as other events are */

    ngx_http_retarget_count(lo->counter, 1);

    ngx_http_retarget_send_cmds(op->cmds + op->nasks, op->ncmds - op->nasks);
}


/*
 * A product view with a name or a price: "HLEN meta" and "HEXISTS meta
 * v:SKU" ask whether its line has room.  A meta of META_MAX fields gets
 * no new line (counted "meta_full"); the view is still counted and its
 * other writes made.  The page's read deletes all but the newest
 * VIEWED_KEEP lines, so this happens only to visitors who send events
 * without loading pages.
 */

ngx_int_t
ngx_http_retarget_viewed_op(ngx_http_retarget_batch_t *b,
    ngx_http_retarget_event_t *ev)
{
    ngx_http_retarget_op_t         *op;
    ngx_http_retarget_viewed_op_t  *vo;

    op = ngx_http_retarget_op_create(sizeof(ngx_http_retarget_viewed_op_t),
                                     b);
    if (op == NULL) {
        return NGX_ERROR;
    }

    vo = (ngx_http_retarget_viewed_op_t *) op;
    vo->line = b->line;
    vo->fields = -1;
    vo->counter = &ev->conf->counter;

    op->answer = ngx_http_retarget_viewed_answer;
    op->done = ngx_http_retarget_viewed_done;

    ngx_http_retarget_op_run(op);

    return NGX_OK;
}


static void
ngx_http_retarget_viewed_answer(ngx_http_retarget_op_t *op, ngx_uint_t i,
    redisReply *reply)
{
    ngx_http_retarget_viewed_op_t *vo = (ngx_http_retarget_viewed_op_t *) op;

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        return;
    }

    if (i == 0) {
        vo->fields = reply->integer;

    } else {
        vo->exists = (reply->integer != 0);
    }
}


static void
ngx_http_retarget_viewed_done(ngx_http_retarget_op_t *op)
{
    ngx_http_retarget_viewed_op_t *vo = (ngx_http_retarget_viewed_op_t *) op;

    ngx_uint_t                n;
    ngx_http_retarget_cmd_t  *writes;

    writes = op->cmds + op->nasks;
    n = op->ncmds - op->nasks;

    ngx_http_retarget_count(vo->counter, 1);

    if (vo->line == NGX_CONF_UNSET_UINT
        || vo->exists
        || vo->fields < NGX_HTTP_RETARGET_META_MAX)
    {
        ngx_http_retarget_send_cmds(writes, n);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "retarget event: meta full, %L fields: no viewed line",
                   vo->fields);

    ngx_http_retarget_count(&ngx_http_retarget_c_meta_full, 1);

    ngx_http_retarget_send_cmds(writes, vo->line);
    ngx_http_retarget_send_cmds(writes + vo->line + 1, n - vo->line - 1);
}


/*
 * A purchase asks "SET order NX" when it has an order id, and for a
 * returning visitor what led to it: "HMGET meta clicked seen".  With the
 * answers in, it is counted (when the order is new, or unknown: counted
 * rather than lost), attributed, and its writes follow.
 */

ngx_int_t
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

    /* for the distinct converters, once the answers tell the arm */

    if (b->vid->len == NGX_HTTP_RETARGET_VID_LEN) {
        ngx_memcpy(p->vid, b->vid->data, NGX_HTTP_RETARGET_VID_LEN);
        p->visitor.data = p->vid;
        p->visitor.len = NGX_HTTP_RETARGET_VID_LEN;
    }

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

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "retarget event: order answer %d, duplicate %ui",
                       reply ? reply->type : -1, (ngx_uint_t) p->duplicate);
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

    /*
     * The lift's converter: the reminder seen (or withheld, for the
     * holdout) within the longer of the two windows, whether clicked or
     * not, the same for every arm (intent to treat).
     */

    p->converted = ngx_http_retarget_stamp_arm(p, reply->element[1],
                                               ngx_max(p->click_window,
                                                       p->view_window));

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "retarget event: purchase attributed to \"%V\", "
                   "converter of \"%V\"",
                   p->conversions ? p->conversions
                                  : &ngx_http_retarget_no_counter,
                   p->converted ? &p->converted->name
                                : &ngx_http_retarget_no_counter);
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
    ngx_uint_t                         holdout;
    ngx_http_retarget_variant_name_t  *vn;

    vn = ngx_http_retarget_stamp_arm(p, stamp,
                                     click ? p->click_window
                                           : p->view_window);
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

    p->attributed = vn;
    p->by_click = click;

    if (click || holdout) {
        p->revenue = &vn->counters[ngx_http_retarget_vc_revenue];
        return &vn->counters[ngx_http_retarget_vc_conversions];
    }

    p->revenue = &vn->counters[ngx_http_retarget_vc_view_revenue];
    return &vn->counters[ngx_http_retarget_vc_view_conversions];
}


/* the arm of a "TS ARM" stamp of this configuration, if TS is in window */

static ngx_http_retarget_variant_name_t *
ngx_http_retarget_stamp_arm(ngx_http_retarget_purchase_t *p,
    redisReply *stamp, time_t window)
{
    int64_t    ts;
    ngx_str_t  value, stamp_ts, name;

    if (stamp == NULL || stamp->type != REDIS_REPLY_STRING) {
        return NULL;
    }

    value.data = (u_char *) stamp->str;
    value.len = stamp->len;

    if (ngx_http_retarget_stamp_decode(&value, &stamp_ts, &name) != NGX_OK) {
        return NULL;
    }

    ts = ngx_http_retarget_parse_number(&stamp_ts);

    if (ts == NGX_ERROR || p->now - ts > window) {
        return NULL;
    }

    return ngx_http_retarget_variant_find(p->rmcf, name.data, name.len);
}


static void
ngx_http_retarget_purchase_done(ngx_http_retarget_op_t *op)
{
    ngx_http_retarget_purchase_t *p = (ngx_http_retarget_purchase_t *) op;

    if (p->duplicate) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "retarget event: duplicate purchase, not written");
        ngx_http_retarget_count(&ngx_http_retarget_c_duplicate, 1);
        return;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "retarget event: purchase of %L cents counted, "
                   "%ui writes follow, order %ui", p->cents,
                   op->ncmds - op->nasks, (ngx_uint_t) p->order);

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

    if (p->converted != NULL) {
        ngx_http_retarget_buyer(p);
    }

    ngx_http_retarget_send_cmds(op->cmds + op->nasks,
                                op->ncmds - op->nasks);

    ngx_http_retarget_converters(p);
}


/*
 * A purchase of the lift's converters: counted, its amount summed, and
 * its amount in units squared (capped first: 10^7 units, so a sum of
 * squares stays far from overflow), for the interval of the revenue per
 * eligible visitor.  round(u^2) = (cents^2 + 5000) / 10000.
 */

static void
ngx_http_retarget_buyer(ngx_http_retarget_purchase_t *p)
{
    int64_t                            cents, square;
    ngx_http_retarget_variant_name_t  *vn;

    vn = p->converted;
    cents = ngx_min(p->cents,
                    (int64_t) NGX_HTTP_RETARGET_SQUARE_UNITS_MAX * 100);

    square = (cents > 0) ? (cents * cents + 5000) / 10000 : 0;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "retarget event: a buyer of \"%V\", %L cents, square %L",
                   &vn->name, p->cents, square);

    ngx_http_retarget_count(&vn->counters[ngx_http_retarget_vc_buyers], 1);

    if (p->cents > 0) {
        ngx_http_retarget_count(
            &vn->counters[ngx_http_retarget_vc_buyer_revenue], p->cents);
    }

    if (square) {
        ngx_http_retarget_count(&vn->counters[ngx_http_retarget_vc_squares],
                                square);
    }
}


/*
 * The visitor among today's distinct converters of the arm, and of the
 * arm it was attributed to (by a click or by a view): PFADDs sent as
 * they are, no answer waited for.  The request is gone: a small pool of
 * their own holds the commands until they are queued.
 */

static void
ngx_http_retarget_converters(ngx_http_retarget_purchase_t *p)
{
    ngx_pool_t                *pool;
    ngx_array_t               *cmds;
    ngx_http_retarget_people_e  kind;

    if (p->visitor.len == 0
        || (p->converted == NULL && p->attributed == NULL))
    {
        return;
    }

    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (pool == NULL) {
        return;
    }

    cmds = ngx_array_create(pool, 4, sizeof(ngx_http_retarget_cmd_t));
    if (cmds == NULL) {
        goto done;
    }

    if (p->converted != NULL
        && ngx_http_retarget_people_add(pool, p->rmcf, cmds,
                                        ngx_http_retarget_people_converters,
                                        &p->converted->name, &p->visitor)
           != NGX_OK)
    {
        goto done;
    }

    kind = p->by_click ? ngx_http_retarget_people_click_converters
                       : ngx_http_retarget_people_view_converters;

    if (p->attributed != NULL
        && ngx_http_retarget_people_add(pool, p->rmcf, cmds, kind,
                                        &p->attributed->name, &p->visitor)
           != NGX_OK)
    {
        goto done;
    }

    ngx_http_retarget_send_cmds(cmds->elts, cmds->nelts);

done:

    ngx_destroy_pool(pool);
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

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, b->r->connection->log, 0,
                   "retarget event: %ui asks, then %ui writes, %uz bytes",
                   op->nasks, n - op->nasks, len);
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

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "retarget event: %ui of %ui asks sent", op->asked,
                   op->nasks);

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
