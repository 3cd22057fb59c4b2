
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The daily counters (a hash per UTC day): summed in each worker and
 * flushed to Redis once a second and when the worker exits, never
 * incremented per request.  A counter whose command cannot be queued,
 * or that moved while Redis was away, keeps its count for the next
 * flush.  Each flush also trims what has outlived retarget_retention in
 * the shared keys (ngx_http_retarget_expire_old()).
 */


#include "ngx_http_retarget_counters.h"
#include "ngx_http_retarget_cmd.h"
#include "ngx_http_retarget_redis.h"
#include "ngx_http_retarget_store.h"


#define NGX_HTTP_RETARGET_FLUSH_INTERVAL  1000
#define NGX_HTTP_RETARGET_MAX_COUNTERS    512   /* 9 an arm */
#define NGX_HTTP_RETARGET_STATS_TTL       (400 * 86400)


typedef struct {
    ngx_str_t                      field;
    int64_t                        n;
} ngx_http_retarget_counter_t;


/* the counters of this worker for one day */
typedef struct {
    ngx_http_retarget_main_conf_t *rmcf;
    u_char                         day[8];     /* YYYYMMDD */
    ngx_str_t                      key;        /* of the day's hash */
    ngx_uint_t                     n;
    ngx_http_retarget_counter_t    counters[NGX_HTTP_RETARGET_MAX_COUNTERS];
    ngx_event_t                    flush;
    ngx_uint_t                     dropped;    /* link drops reported */
    unsigned                       full:1;     /* "too many" reported */
} ngx_http_retarget_counters_t;


static void ngx_http_retarget_count_now(ngx_str_t *field, int64_t n);
static ngx_uint_t ngx_http_retarget_in_cents(ngx_str_t *field);
static void ngx_http_retarget_flush_counters(void);
static void ngx_http_retarget_counters_exit(void *data);
static void ngx_http_retarget_flush_handler(ngx_event_t *ev);
static void ngx_http_retarget_today(u_char *day);


static ngx_str_t  ngx_http_retarget_c_dropped = ngx_string("dropped");

static ngx_http_retarget_counters_t  *ngx_http_retarget_counters;


ngx_int_t
ngx_http_retarget_counters_init_process(ngx_cycle_t *cycle,
    ngx_http_retarget_main_conf_t *rmcf)
{
    ngx_str_t                      day;
    ngx_http_retarget_counters_t  *rc;

    rc = ngx_pcalloc(cycle->pool, sizeof(ngx_http_retarget_counters_t));
    if (rc == NULL) {
        return NGX_ERROR;
    }

    rc->rmcf = rmcf;
    ngx_http_retarget_today(rc->day);

    /* the key of every day has the same length: written at each flush */

    day.data = rc->day;
    day.len = sizeof(rc->day);

    rc->key.len = ngx_http_retarget_key_len(&rmcf->redis.prefix,
                                            ngx_http_retarget_key_stats, &day);
    rc->key.data = ngx_pnalloc(cycle->pool, rc->key.len);
    if (rc->key.data == NULL) {
        return NGX_ERROR;
    }

    rc->flush.handler = ngx_http_retarget_flush_handler;
    rc->flush.data = rc;
    rc->flush.log = cycle->log;
    rc->flush.cancelable = 1;

    ngx_add_timer(&rc->flush, NGX_HTTP_RETARGET_FLUSH_INTERVAL);

    ngx_http_retarget_counters = rc;

    if (ngx_http_retarget_redis_on_exit(ngx_http_retarget_redis_get(),
                                        ngx_http_retarget_counters_exit, rc)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the daily counters of this worker */

void
ngx_http_retarget_count(ngx_str_t *field, int64_t n)
{
    u_char                         day[8];
    ngx_http_retarget_counters_t  *rc;

    rc = ngx_http_retarget_counters;

    if (rc == NULL) {
        return;
    }

    ngx_http_retarget_today(day);

    if (ngx_memcmp(day, rc->day, 8) != 0) {
        /* midnight: yesterday's counts go to yesterday's hash */
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "retarget counters: a new day");
        ngx_http_retarget_flush_counters();
        ngx_memcpy(rc->day, day, 8);
    }

    ngx_http_retarget_count_now(field, n);

    if (ngx_exiting) {
        /* the last requests of a leaving worker: no later flush comes */
        ngx_http_retarget_flush_counters();
    }
}


static void
ngx_http_retarget_count_now(ngx_str_t *field, int64_t n)
{
    ngx_uint_t                     i;
    ngx_http_retarget_counter_t   *c;
    ngx_http_retarget_counters_t  *rc;

    rc = ngx_http_retarget_counters;

    for (i = 0; i < rc->n; i++) {
        c = &rc->counters[i];

        if (c->field.len == field->len
            && ngx_strncmp(c->field.data, field->data, field->len) == 0)
        {
            c->n += n;
            return;
        }
    }

    if (rc->n == NGX_HTTP_RETARGET_MAX_COUNTERS) {

        /*
         * Once: the names come from the configuration, so the table does
         * not empty itself, and every count of a page would log it.
         */

        if (!rc->full) {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "retarget: too many counters, \"%V\" and "
                          "any later new ones not counted", field);
            rc->full = 1;
        }

        return;
    }

    /* the names live in the configuration or in static memory */

    c = &rc->counters[rc->n++];
    c->field = *field;
    c->n = n;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "retarget counters: \"%V\" is counter %ui", field, rc->n);
}


/*
 * "revenue", "revenue:A", "view_revenue:A": amounts, summed in cents.  A
 * custom event's counter ("events:NAME") is a count whatever its name.
 */

static ngx_uint_t
ngx_http_retarget_in_cents(ngx_str_t *field)
{
    if (field->len > ngx_http_retarget_c_events.len
        && ngx_strncmp(field->data, ngx_http_retarget_c_events.data,
                       ngx_http_retarget_c_events.len)
           == 0)
    {
        return 0;
    }

    return ngx_strnstr(field->data, "revenue", field->len) != NULL;
}


/*
 * HINCRBY (HINCRBYFLOAT for amounts) for each counter that moved, and
 * the hash's TTL.  A counter whose command cannot be queued keeps its
 * count for the next flush.
 */

static void
ngx_http_retarget_flush_counters(void)
{
    u_char                          num[NGX_INT64_LEN + 2], *p;
    int64_t                         n, dropped;
    ngx_str_t                       day, value;
    ngx_uint_t                      i, sent;
    ngx_http_retarget_cmd_t         cmd;
    ngx_http_retarget_counter_t    *c;
    ngx_http_retarget_counters_t   *rc;
    ngx_http_retarget_redis_t      *rds;
    ngx_http_retarget_redis_stats_t stats;

    rc = ngx_http_retarget_counters;
    rds = ngx_http_retarget_redis_get();

    if (rc == NULL
        || ngx_http_retarget_redis_state(rds, &stats)
           != ngx_http_retarget_link_up)
    {
        /* kept here, not in the queue, until Redis is back */
        return;
    }

    /* stream entries and carts older than the retention go */

    ngx_http_retarget_expire_old(rc->rmcf);

    /* commands the link had to drop show up in the day's counters too */

    dropped = stats.dropped - rc->dropped;

    if (dropped > 0) {
        rc->dropped = stats.dropped;
        ngx_http_retarget_count_now(&ngx_http_retarget_c_dropped, dropped);
    }

    day.data = rc->day;
    day.len = sizeof(rc->day);

    (void) ngx_http_retarget_key_put(rc->key.data, &rc->rmcf->redis.prefix,
                                     ngx_http_retarget_key_stats, &day);

    value.data = num;
    sent = 0;

    for (i = 0; i < rc->n; i++) {
        c = &rc->counters[i];
        n = c->n;

        if (n == 0) {
            continue;
        }

        if (ngx_http_retarget_in_cents(&c->field)) {
            ngx_http_retarget_cmd_init(&cmd, "HINCRBYFLOAT");
            p = ngx_sprintf(num, "%s%L.%02L", n < 0 ? "-" : "",
                            (n < 0 ? -n : n) / 100, (n < 0 ? -n : n) % 100);

        } else {
            ngx_http_retarget_cmd_init(&cmd, "HINCRBY");
            p = ngx_sprintf(num, "%L", n);
        }

        value.len = p - num;

        ngx_http_retarget_arg_str(&cmd, &rc->key);
        ngx_http_retarget_arg_str(&cmd, &c->field);
        ngx_http_retarget_arg_str(&cmd, &value);

        if (ngx_http_retarget_send_cmd(&cmd) == NGX_OK) {
            c->n -= n;
            sent++;

        } else {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                           "retarget counters: \"%V\" kept for the next "
                           "flush", &c->field);
        }
    }

    if (sent) {
        ngx_http_retarget_cmd_init(&cmd, "EXPIRE");
        ngx_http_retarget_arg_str(&cmd, &rc->key);

        value.len = ngx_sprintf(num, "%d", NGX_HTTP_RETARGET_STATS_TTL) - num;
        ngx_http_retarget_arg_str(&cmd, &value);

        (void) ngx_http_retarget_send_cmd(&cmd);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "retarget counters: flushed %ui to \"%V\"", sent,
                       &rc->key);
    }
}


static void
ngx_http_retarget_flush_handler(ngx_event_t *ev)
{
    ngx_http_retarget_flush_counters();

    if (!ngx_exiting) {
        ngx_add_timer(ev, NGX_HTTP_RETARGET_FLUSH_INTERVAL);
    }
}


/* the worker is about to exit: the counters go out with the last batch */

static void
ngx_http_retarget_counters_exit(void *data)
{
    ngx_http_retarget_flush_counters();
}


static void
ngx_http_retarget_today(u_char *day)
{
    ngx_tm_t  tm;

    ngx_gmtime(ngx_time(), &tm);

    (void) ngx_sprintf(day, "%04d%02d%02d", tm.ngx_tm_year, tm.ngx_tm_mon,
                       tm.ngx_tm_mday);
}
