
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * "location /retarget_status { retarget_status; }": the state of every
 * worker's Redis link and counters, and today's counters from Redis, as
 * JSON or (?format=prometheus) in the Prometheus text format.
 *
 * Each worker publishes its numbers into its own slot of a small shared
 * zone, every 500 ms and whenever it answers a status request itself.
 * The zone exists only when a status location is configured; without it
 * the per-worker hooks do nothing.  A slot has one writer (the worker
 * with that ngx_worker number) and is read with a sequence counter, so a
 * reader never sees half of an update.  Only the first 64 workers are
 * shown; a worker beyond that logs so once at start and is left out of
 * the workers and the totals.  A slot not updated for 5 s belongs to a
 * worker that is gone (after a reload with fewer workers): it is listed
 * with "gone": true and left out of the totals and the Prometheus output.
 *
 * Today's counters are one HGETALL, sent through ngx_http_retarget_wait():
 * a Redis that is down or slow costs the status its "today", never the
 * whole answer.  The same wait reads today's distinct visitors of each
 * arm (a PFCOUNT of its eligible, clickers and converters), shown per
 * arm beside the arm's counters: "arms" in JSON, retarget_arm_* with an
 * arm="A" label in Prometheus.
 */


#include "ngx_http_retarget_status.h"
#include "ngx_http_retarget_campaign.h"
#include "ngx_http_retarget_catalog.h"
#include "ngx_http_retarget_cmd.h"
#include "ngx_http_retarget_escape.h"
#include "ngx_http_retarget_json.h"
#include "ngx_http_retarget_optimize.h"
#include "ngx_http_retarget_redis.h"
#include "ngx_http_retarget_request.h"
#include "ngx_http_retarget_store.h"
#include "ngx_http_retarget_wait.h"

#include <jansson.h>


#define NGX_HTTP_RETARGET_STATUS_SLOTS   64
#define NGX_HTTP_RETARGET_STATUS_SIZE    (64 * 1024)
#define NGX_HTTP_RETARGET_STATUS_PERIOD  500
#define NGX_HTTP_RETARGET_STATUS_GONE    5000
#define NGX_HTTP_RETARGET_STATUS_MAGIC   0x52545331
#define NGX_HTTP_RETARGET_OUTCOMES       NGX_HTTP_RETARGET_DECISIONS

/* the longest line of a worker metric, but for the metric name */
#define NGX_HTTP_RETARGET_PROM_LINE                                          \
    (sizeof("{worker=\"\",outcome=\"\"} \n") + NGX_INT64_LEN                 \
     + NGX_ATOMIC_T_LEN + 32)

/* the fixed parts of the Prometheus text, sized and written alike */

#define NGX_HTTP_RETARGET_PROM_INJECTIONS                                    \
    "# HELP retarget_injections_total "                                      \
    "What the filter did with responses.\n"                                  \
    "# TYPE retarget_injections_total counter\n"

#define NGX_HTTP_RETARGET_PROM_AVAILABLE                                     \
    "# HELP retarget_today_available "                                       \
    "Whether today's counters could be read from Redis.\n"                   \
    "# TYPE retarget_today_available gauge\n"                                \
    "retarget_today_available %d\n"

#define NGX_HTTP_RETARGET_PROM_TODAY                                         \
    "# HELP retarget_today Today's counters in Redis (UTC).\n"               \
    "# TYPE retarget_today gauge\n"

#define NGX_HTTP_RETARGET_PROM_FIELD     "retarget_today{field=\""

/* the arms shown (each costs up to 3 PFCOUNTs), the variants first */
#define NGX_HTTP_RETARGET_STATUS_ARMS    32

/* the longest variant name (campaign_conf.c checks it) */
#define NGX_HTTP_RETARGET_STATUS_NAME_MAX  32

/* the people kinds read per arm: eligible, clickers, converters */
#define NGX_HTTP_RETARGET_STATUS_PEOPLE  3

/*
 * The largest distinct count shown: 2^53 - 1, the largest integer every
 * JSON reader keeps exactly (a HyperLogLog of a real shop is far below;
 * more is whatever else wrote the key)
 */
#define NGX_HTTP_RETARGET_STATUS_COUNT_MAX  9007199254740991LL

/* which arms a per-arm metric is shown for */
#define NGX_HTTP_RETARGET_ARM_VARIANT    1
#define NGX_HTTP_RETARGET_ARM_HOLDOUT    2
#define NGX_HTTP_RETARGET_ARM_ANY        3

#define NGX_HTTP_RETARGET_PROM_ARM       "retarget_arm_"


typedef struct {
    ngx_atomic_t                       seq;       /* odd while written */
    ngx_atomic_uint_t                  pid;       /* 0: never used */
    ngx_atomic_uint_t                  started;   /* unix time */
    ngx_atomic_uint_t                  updated;   /* ngx_current_msec */
    ngx_atomic_uint_t                  link;      /* link_e */
    ngx_http_retarget_redis_stats_t    redis;
    ngx_atomic_uint_t                  decisions[NGX_HTTP_RETARGET_OUTCOMES];
    ngx_http_retarget_reads_t          reads;
    ngx_atomic_uint_t                  products;  /* the catalogue's cache */
    ngx_atomic_uint_t                  product_bytes;
    ngx_atomic_uint_t                  tracked;
    ngx_atomic_uint_t                  invalidations;
} ngx_http_retarget_status_slot_t;


typedef struct {
    ngx_uint_t                         magic;
    ngx_uint_t                         slot_size; /* layout check on reload */
    ngx_http_retarget_status_slot_t    slots[NGX_HTTP_RETARGET_STATUS_SLOTS];
} ngx_http_retarget_status_shm_t;


/* a slot as read by a status request */
typedef struct {
    ngx_http_retarget_status_slot_t    s;
    ngx_atomic_uint_t                  link_up;
    ngx_msec_t                         ago;
    ngx_uint_t                         gone;
} ngx_http_retarget_status_row_t;


/* an arm of the campaign, and today's distinct visitors of it */
typedef struct {
    ngx_http_retarget_variant_name_t  *vn;
    ngx_uint_t                         holdout;
    int64_t                            people[NGX_HTTP_RETARGET_STATUS_PEOPLE];
                                                  /* -1: not read */
} ngx_http_retarget_status_arm_t;


/* a status request, in its pool */
typedef struct {
    json_t                            *today;     /* NULL: not read */
    const char                        *error;     /* why not, for JSON */
    u_char                             date[8];   /* YYYYMMDD, UTC, or 0 */
    ngx_array_t                       *arms;      /* NULL: none read */
    ngx_uint_t                         reads;     /* the PFCOUNTs sent */
    ngx_uint_t                         replies;   /* replies seen */
    unsigned                           prometheus:1;
} ngx_http_retarget_status_ctx_t;


/*
 * A number of each arm: a PFCOUNT (people: a kind) or a field of today's
 * hash (counter: a variant counter, -1 with holdout: "eligible:holdout").
 */
typedef struct {
    char                              *name;      /* after retarget_arm_ */
    char                              *help;
    ngx_int_t                          people;    /* -1: a field */
    ngx_int_t                          counter;   /* -1: eligible pages */
    ngx_uint_t                         arms;      /* NGX_HTTP_RETARGET_ARM_ */
} ngx_http_retarget_status_arm_metric_t;


/*
 * A number of each worker, in both formats: the Prometheus metric family
 * in the table's order, the JSON key (if any) at its place among them.
 */
typedef struct {
    char                              *name;
    char                              *type;
    char                              *help;
    size_t                             offset;    /* in the row */
    char                              *key;       /* NULL: not in JSON */
    ngx_uint_t                         key_order;
} ngx_http_retarget_status_metric_t;


static ngx_int_t ngx_http_retarget_status_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_retarget_status_tick(ngx_event_t *ev);
static void ngx_http_retarget_status_publish(void);
static void ngx_http_retarget_status_read_slot(
    ngx_http_retarget_status_slot_t *slot,
    ngx_http_retarget_status_slot_t *copy);

static ngx_int_t ngx_http_retarget_status_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_retarget_status_read(ngx_http_request_t *r,
    ngx_http_retarget_main_conf_t *rmcf, ngx_http_retarget_status_ctx_t *ctx);
static void ngx_http_retarget_status_reply(ngx_http_request_t *r,
    void *data, redisReply *reply);
static void ngx_http_retarget_status_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc);
static ngx_int_t ngx_http_retarget_status_send(ngx_http_request_t *r,
    ngx_http_retarget_status_ctx_t *ctx);
static json_t *ngx_http_retarget_status_today(ngx_http_request_t *r,
    redisReply *reply, const char **error);
static ngx_int_t ngx_http_retarget_status_integer(u_char *p, size_t len,
    json_int_t *n);
static ngx_int_t ngx_http_retarget_status_decimal(u_char *p, size_t len);
static ngx_array_t *ngx_http_retarget_status_rows(ngx_http_request_t *r,
    ngx_http_retarget_status_row_t *totals);

static ngx_atomic_uint_t *ngx_http_retarget_status_value(
    ngx_http_retarget_status_row_t *row, ngx_http_retarget_status_metric_t *m);
static int ngx_http_retarget_status_counters(json_t *o,
    ngx_http_retarget_status_row_t *row);
static json_t *ngx_http_retarget_status_worker(
    ngx_http_retarget_status_row_t *row);
static ngx_int_t ngx_http_retarget_status_json(ngx_http_request_t *r,
    ngx_http_retarget_status_ctx_t *ctx, ngx_str_t *out);

static ngx_int_t ngx_http_retarget_status_arms(ngx_http_request_t *r,
    ngx_http_retarget_main_conf_t *rmcf, ngx_http_retarget_status_ctx_t *ctx,
    ngx_array_t *cmds);
static void ngx_http_retarget_status_people(ngx_http_request_t *r,
    ngx_http_retarget_status_ctx_t *ctx, redisReply *reply);
static ngx_int_t ngx_http_retarget_status_arm_value(
    ngx_http_retarget_status_ctx_t *ctx, ngx_http_retarget_status_arm_t *arm,
    ngx_http_retarget_status_arm_metric_t *m, int64_t *n, ngx_str_t *dec);
static json_t *ngx_http_retarget_status_arms_json(
    ngx_http_retarget_status_ctx_t *ctx);
static size_t ngx_http_retarget_status_prom_arms_size(
    ngx_http_retarget_status_ctx_t *ctx);
static u_char *ngx_http_retarget_status_prom_arms(u_char *p, u_char *last,
    ngx_http_retarget_status_ctx_t *ctx);

static ngx_int_t ngx_http_retarget_status_prometheus(ngx_http_request_t *r,
    ngx_http_retarget_status_ctx_t *ctx, ngx_str_t *out);
static size_t ngx_http_retarget_status_prom_size(ngx_array_t *rows,
    json_t *today);
static u_char *ngx_http_retarget_status_prom_workers(u_char *p, u_char *last,
    ngx_array_t *rows);
static u_char *ngx_http_retarget_status_prom_today(u_char *p, u_char *last,
    json_t *today);
static u_char *ngx_http_retarget_status_label(u_char *dst, u_char *src,
    size_t len);


static char  *ngx_http_retarget_status_links[] = {
    "down", "connecting", "up"
};


static ngx_http_retarget_status_metric_t  ngx_http_retarget_status_metrics[] = {

    { "retarget_redis_link_up", "gauge",
      "Whether the worker's Redis link is up.",
      offsetof(ngx_http_retarget_status_row_t, link_up),
      NULL, 0 },

    { "retarget_redis_commands_sent_total", "counter",
      "Commands sent to Redis.",
      offsetof(ngx_http_retarget_status_row_t, s.redis.sent),
      "sent", 2 },

    { "retarget_redis_commands_dropped_total", "counter",
      "Commands dropped: queue full, link down, or unanswered.",
      offsetof(ngx_http_retarget_status_row_t, s.redis.dropped),
      "dropped", 3 },

    { "retarget_redis_errors_total", "counter",
      "Error replies from Redis.",
      offsetof(ngx_http_retarget_status_row_t, s.redis.errors),
      "errors", 4 },

    { "retarget_redis_reconnects_total", "counter",
      "Times the Redis link was opened again.",
      offsetof(ngx_http_retarget_status_row_t, s.redis.reconnects),
      "reconnects", 5 },

    { "retarget_redis_queue_depth", "gauge",
      "Commands waiting for the Redis link.",
      offsetof(ngx_http_retarget_status_row_t, s.redis.queued),
      "queued", 0 },

    { "retarget_redis_inflight", "gauge",
      "Commands sent to Redis and not answered yet.",
      offsetof(ngx_http_retarget_status_row_t, s.redis.inflight),
      "inflight", 1 },

    { "retarget_cart_reads_total", "counter",
      "Pages that read the visitor's state from Redis.",
      offsetof(ngx_http_retarget_status_row_t, s.reads.count),
      "cart_reads", 6 },

    { "retarget_cart_read_timeouts_total", "counter",
      "Cart reads not answered within retarget_redis_timeout.",
      offsetof(ngx_http_retarget_status_row_t, s.reads.timeouts),
      "cart_read_timeouts", 7 },

    { "retarget_cart_read_failures_total", "counter",
      "Cart reads not sent (link down) or answered with nonsense.",
      offsetof(ngx_http_retarget_status_row_t, s.reads.failed),
      "cart_read_failures", 8 },

    { "retarget_cart_read_milliseconds_total", "counter",
      "Time from sending cart reads to their answers, summed.",
      offsetof(ngx_http_retarget_status_row_t, s.reads.msec),
      "cart_read_ms_total", 9 },

    { "retarget_catalog_products", "gauge",
      "Products of the catalogue the worker keeps for reminders.",
      offsetof(ngx_http_retarget_status_row_t, s.products),
      "catalog_products", 10 },

    { "retarget_catalog_bytes", "gauge",
      "Bytes of the products the worker keeps.",
      offsetof(ngx_http_retarget_status_row_t, s.product_bytes),
      NULL, 0 },

    { "retarget_catalog_tracked", "gauge",
      "Whether Redis tells the worker of catalogue changes (else it "
      "polls).",
      offsetof(ngx_http_retarget_status_row_t, s.tracked),
      "catalog_tracked", 11 },

    { "retarget_catalog_invalidations_total", "counter",
      "Changes of the catalogue Redis told the worker of.",
      offsetof(ngx_http_retarget_status_row_t, s.invalidations),
      "catalog_invalidations", 12 },

    { NULL, NULL, NULL, 0, NULL, 0 }
};

/* the metrics that have a JSON key */
#define NGX_HTTP_RETARGET_STATUS_KEYS  13


/* the people kinds read, for the debug log */
static char  *ngx_http_retarget_status_kinds[] = {
    "eligible", "clickers", "converters"
};


static ngx_http_retarget_status_arm_metric_t
    ngx_http_retarget_status_arm_metrics[] =
{
    { "eligible_visitors",
      "Distinct visitors today the arm's reminder was due for: shown, or "
      "withheld for the holdout (HyperLogLog, 0.81 % standard error).",
      ngx_http_retarget_people_eligible, -1, NGX_HTTP_RETARGET_ARM_ANY },

    { "clickers",
      "Distinct visitors today who clicked the arm's reminder.",
      ngx_http_retarget_people_clickers, -1, NGX_HTTP_RETARGET_ARM_VARIANT },

    { "converters",
      "Distinct visitors today who bought within the longer attribution "
      "window of the arm's reminder, clicked or not (intent to treat).",
      ngx_http_retarget_people_converters, -1, NGX_HTTP_RETARGET_ARM_ANY },

    { "eligible_pages",
      "Pages today that withheld the holdout's reminder.",
      -1, -1, NGX_HTTP_RETARGET_ARM_HOLDOUT },

    { "impressions",
      "Pages today that showed the arm's reminder.",
      -1, ngx_http_retarget_vc_impressions, NGX_HTTP_RETARGET_ARM_VARIANT },

    { "clicks",
      "Clicks today on the arm's reminder.",
      -1, ngx_http_retarget_vc_clicks, NGX_HTTP_RETARGET_ARM_VARIANT },

    { "conversions",
      "Purchases today attributed to the arm: after a click within the "
      "click window (the holdout's: within the view window).",
      -1, ngx_http_retarget_vc_conversions, NGX_HTTP_RETARGET_ARM_ANY },

    { "revenue",
      "The amounts of those purchases.",
      -1, ngx_http_retarget_vc_revenue, NGX_HTTP_RETARGET_ARM_ANY },

    { "view_conversions",
      "Purchases today attributed to the arm's reminder seen, not clicked, "
      "within the view window.",
      -1, ngx_http_retarget_vc_view_conversions,
      NGX_HTTP_RETARGET_ARM_VARIANT },

    { "view_revenue",
      "The amounts of those purchases.",
      -1, ngx_http_retarget_vc_view_revenue, NGX_HTTP_RETARGET_ARM_VARIANT },

    { "buyers",
      "Purchases today of the arm's converters (intent to treat).",
      -1, ngx_http_retarget_vc_buyers, NGX_HTTP_RETARGET_ARM_ANY },

    { "buyer_revenue",
      "The amounts of those purchases.",
      -1, ngx_http_retarget_vc_buyer_revenue, NGX_HTTP_RETARGET_ARM_ANY },

    { NULL, NULL, 0, 0, 0 }
};


/* this worker's slot, NULL when it publishes nothing */
static ngx_http_retarget_status_slot_t  *ngx_http_retarget_status_slot;

/* this worker's ngx_http_retarget_status_decision() counts */
static ngx_atomic_uint_t  ngx_http_retarget_counts[NGX_HTTP_RETARGET_OUTCOMES];

/* this worker's cart reads, by ngx_http_retarget_status_cart_read() */
static ngx_http_retarget_reads_t  ngx_http_retarget_reads;

static ngx_event_t  ngx_http_retarget_status_timer;


char *
ngx_http_retarget_status_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_str_t                       name;
    ngx_shm_zone_t                 *shm_zone;
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_retarget_main_conf_t  *rmcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_retarget_status_handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_retarget_status_handler;

    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_retarget_module);

    if (rmcf->status_zone != NULL) {
        return NGX_CONF_OK;
    }

    ngx_str_set(&name, "retarget_status");

    shm_zone = ngx_shared_memory_add(cf, &name, NGX_HTTP_RETARGET_STATUS_SIZE,
                                     &ngx_http_retarget_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_retarget_status_init_zone;

    rmcf->status_zone = shm_zone;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_retarget_status_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_retarget_status_shm_t *oshm = data;

    ngx_slab_pool_t                 *shpool;
    ngx_http_retarget_status_shm_t  *shm;

    if (oshm != NULL
        && oshm->magic == NGX_HTTP_RETARGET_STATUS_MAGIC
        && oshm->slot_size == sizeof(ngx_http_retarget_status_slot_t))
    {
        /* reload: the new workers take over the slots of the old ones */
        ngx_log_debug0(NGX_LOG_DEBUG_EVENT, shm_zone->shm.log, 0,
                       "retarget status: zone kept over the reload");

        shm_zone->data = oshm;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }

    /* first start, or a reload into another layout: start afresh */

    shm = ngx_slab_calloc(shpool, sizeof(ngx_http_retarget_status_shm_t));
    if (shm == NULL) {
        return NGX_ERROR;
    }

    shm->magic = NGX_HTTP_RETARGET_STATUS_MAGIC;
    shm->slot_size = sizeof(ngx_http_retarget_status_slot_t);

    shpool->data = shm;
    shm_zone->data = shm;

    return NGX_OK;
}


ngx_int_t
ngx_http_retarget_status_init_process(ngx_cycle_t *cycle,
    ngx_http_retarget_main_conf_t *rmcf)
{
    ngx_event_t                      *ev;
    ngx_http_retarget_status_shm_t   *shm;
    ngx_http_retarget_status_slot_t  *slot;

    if (rmcf->status_zone == NULL
        || (ngx_process != NGX_PROCESS_WORKER
            && ngx_process != NGX_PROCESS_SINGLE))
    {
        return NGX_OK;
    }

    if (ngx_worker >= NGX_HTTP_RETARGET_STATUS_SLOTS) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "retarget: worker %ui is not shown by retarget_status, "
                      "which shows the first %d workers", ngx_worker,
                      NGX_HTTP_RETARGET_STATUS_SLOTS);
        return NGX_OK;
    }

    shm = rmcf->status_zone->data;
    slot = &shm->slots[ngx_worker];

    /* a worker killed while it wrote left the sequence odd */

    if (slot->seq & 1) {
        (void) ngx_atomic_fetch_add(&slot->seq, 1);
    }

    (void) ngx_atomic_fetch_add(&slot->seq, 1);
    ngx_memory_barrier();

    slot->pid = (ngx_atomic_uint_t) ngx_pid;
    slot->started = (ngx_atomic_uint_t) ngx_time();
    slot->updated = ngx_current_msec;
    slot->link = ngx_http_retarget_link_down;
    ngx_memzero(&slot->redis, sizeof(ngx_http_retarget_redis_stats_t));
    ngx_memzero(slot->decisions, sizeof(slot->decisions));

    ngx_memory_barrier();
    (void) ngx_atomic_fetch_add(&slot->seq, 1);

    ngx_memzero(ngx_http_retarget_counts,
                sizeof(ngx_http_retarget_counts));
    ngx_memzero(&ngx_http_retarget_reads, sizeof(ngx_http_retarget_reads_t));

    ngx_http_retarget_status_slot = slot;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, cycle->log, 0,
                   "retarget status: worker %ui publishes in slot %ui",
                   ngx_worker, ngx_worker);

    /*
     * The Redis link is set up after this: the first tick, on the first
     * turn of the event loop, publishes its state.
     */

    ev = &ngx_http_retarget_status_timer;

    ev->handler = ngx_http_retarget_status_tick;
    ev->log = cycle->log;
    ev->cancelable = 1;

    /* never NULL: debug logging of timers reads it as a connection */
    ev->data = slot;

    ngx_add_timer(ev, 1);

    return NGX_OK;
}


void
ngx_http_retarget_status_cart_read(ngx_http_retarget_fetch_e outcome,
    ngx_msec_t ms)
{
    ngx_http_retarget_reads.count++;
    ngx_http_retarget_reads.msec += ms;

    if (outcome == ngx_http_retarget_fetch_timeout) {
        ngx_http_retarget_reads.timeouts++;

    } else if (outcome != ngx_http_retarget_fetch_done) {
        ngx_http_retarget_reads.failed++;
    }
}


void
ngx_http_retarget_status_decision(ngx_http_retarget_decision_e d)
{
    if (ngx_http_retarget_status_slot == NULL
        || (ngx_uint_t) d >= NGX_HTTP_RETARGET_OUTCOMES)
    {
        return;
    }

    ngx_http_retarget_counts[d]++;
}


static void
ngx_http_retarget_status_tick(ngx_event_t *ev)
{
    ngx_http_retarget_status_slot_t  *slot;

    slot = ngx_http_retarget_status_slot;

    if (slot == NULL) {
        return;
    }

    if (slot->pid != (ngx_atomic_uint_t) ngx_pid) {
        /* a worker of a newer configuration has the slot now */
        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, ev->log, 0,
                       "retarget status: slot taken over by pid %uA",
                       slot->pid);

        ngx_http_retarget_status_slot = NULL;
        return;
    }

    ngx_http_retarget_status_publish();

    ngx_add_timer(ev, NGX_HTTP_RETARGET_STATUS_PERIOD);
}


static void
ngx_http_retarget_status_publish(void)
{
    size_t                            bytes;
    ngx_uint_t                        products, tracked, invalidations;
    ngx_http_retarget_link_e          link;
    ngx_http_retarget_redis_stats_t   stats;
    ngx_http_retarget_status_slot_t  *slot;

    slot = ngx_http_retarget_status_slot;

    if (slot == NULL || slot->pid != (ngx_atomic_uint_t) ngx_pid) {
        return;
    }

    link = ngx_http_retarget_redis_state(ngx_http_retarget_redis_get(),
                                         &stats);

    ngx_http_retarget_catalog_stats(&products, &bytes, &tracked,
                                    &invalidations);

    (void) ngx_atomic_fetch_add(&slot->seq, 1);
    ngx_memory_barrier();

    slot->updated = ngx_current_msec;
    slot->link = link;
    slot->redis = stats;
    ngx_memcpy(slot->decisions, ngx_http_retarget_counts,
               sizeof(slot->decisions));
    slot->reads = ngx_http_retarget_reads;
    slot->products = products;
    slot->product_bytes = bytes;
    slot->tracked = tracked;
    slot->invalidations = invalidations;

    ngx_memory_barrier();
    (void) ngx_atomic_fetch_add(&slot->seq, 1);
}


static void
ngx_http_retarget_status_read_slot(ngx_http_retarget_status_slot_t *slot,
    ngx_http_retarget_status_slot_t *copy)
{
    ngx_uint_t         i;
    ngx_atomic_uint_t  seq;

    for (i = 0; i < 64; i++) {
        seq = slot->seq;
        ngx_memory_barrier();

        if ((seq & 1) == 0) {
            ngx_memcpy(copy, (void *) slot,
                       sizeof(ngx_http_retarget_status_slot_t));

            ngx_memory_barrier();

            if (slot->seq == seq) {
                return;
            }
        }

        ngx_cpu_pause();
    }

    /* the writer was killed half way through: take what is there */

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, ngx_cycle->log, 0,
                   "retarget status: slot of pid %uA read while written",
                   slot->pid);

    ngx_memcpy(copy, (void *) slot, sizeof(ngx_http_retarget_status_slot_t));
}


static ngx_int_t
ngx_http_retarget_status_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_str_t                        format;
    ngx_http_retarget_main_conf_t   *rmcf;
    ngx_http_retarget_status_ctx_t  *ctx;

    /* no visitor id, no notice: this is not a page of the shop */

    if (ngx_http_retarget_bypass(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_retarget_status_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_arg(r, (u_char *) "format", 6, &format) == NGX_OK) {

        if (format.len == 10
            && ngx_strncmp(format.data, "prometheus", 10) == 0)
        {
            ctx->prometheus = 1;

        } else if (format.len != 4
                   || ngx_strncmp(format.data, "json", 4) != 0)
        {
            return NGX_HTTP_BAD_REQUEST;
        }
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget status: %s requested",
                   ctx->prometheus ? "prometheus" : "json");

    /* this worker's numbers are always current */
    ngx_http_retarget_status_publish();

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    if (rmcf->redis.name.len == 0) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "retarget status: no redis, no daily counters");

        ctx->error = "not configured";
        return ngx_http_retarget_status_send(r, ctx);
    }

    if (r->method == NGX_HTTP_HEAD) {
        /* no body to show today's counters in: no round trip for them */
        return ngx_http_retarget_status_send(r, ctx);
    }

    return ngx_http_retarget_status_read(r, rmcf, ctx);
}


/* HGETALL of today's counters; the response waits for it */

static ngx_int_t
ngx_http_retarget_status_read(ngx_http_request_t *r,
    ngx_http_retarget_main_conf_t *rmcf, ngx_http_retarget_status_ctx_t *ctx)
{
    ngx_int_t                 rc;
    ngx_str_t                 date;
    ngx_array_t              *cmds;
    ngx_http_retarget_cmd_t  *cmd;

    /* the day event.c counts into: UTC */

    ngx_http_retarget_utc_day(ngx_time(), ctx->date);

    date.data = ctx->date;
    date.len = sizeof(ctx->date);

    cmds = ngx_array_create(r->pool, 8, sizeof(ngx_http_retarget_cmd_t));
    if (cmds == NULL
        || ngx_http_retarget_status_arms(r, rmcf, ctx, cmds) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * The HGETALL last: its reply, the only one that allocates (today),
     * is the last one, followed at once by "done", which frees it.
     */

    cmd = ngx_http_retarget_cmd(cmds, "HGETALL");

    if (cmd == NULL
        || ngx_http_retarget_arg_key(r->pool, rmcf, cmd,
                                     ngx_http_retarget_key_stats, &date)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_retarget_wait(r, cmds->nelts, cmds->elts,
                                ngx_http_retarget_status_reply,
                                ngx_http_retarget_status_done, ctx);

    if (rc == NGX_DECLINED) {
        ctx->error = "link down";
        return ngx_http_retarget_status_send(r, ctx);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget status: waiting for the counters of %*s",
                   (size_t) sizeof(ctx->date), ctx->date);

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_retarget_status_reply(ngx_http_request_t *r, void *data,
    redisReply *reply)
{
    ngx_http_retarget_status_ctx_t *ctx = data;

    if (ctx->replies++ < ctx->reads) {
        ngx_http_retarget_status_people(r, ctx, reply);
        return;
    }

    ctx->today = ngx_http_retarget_status_today(r, reply, &ctx->error);
}


/*
 * The arms of the configuration: every variant name registered (the
 * built-in "banner" too), then the holdout, at most STATUS_ARMS of them;
 * a PFCOUNT for each of the arm's people kinds, pushed to cmds.
 */

static ngx_int_t
ngx_http_retarget_status_arms(ngx_http_request_t *r,
    ngx_http_retarget_main_conf_t *rmcf, ngx_http_retarget_status_ctx_t *ctx,
    ngx_array_t *cmds)
{
    ngx_uint_t                         i, k, pass, holdout;
    ngx_http_retarget_cmd_t           *cmd;
    ngx_http_retarget_status_arm_t    *arm;
    ngx_http_retarget_variant_name_t  *vn;

    if (rmcf->variant_names == NULL) {
        return NGX_OK;
    }

    ctx->arms = ngx_array_create(r->pool, rmcf->variant_names->nelts,
                                 sizeof(ngx_http_retarget_status_arm_t));
    if (ctx->arms == NULL) {
        return NGX_ERROR;
    }

    vn = rmcf->variant_names->elts;

    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < rmcf->variant_names->nelts; i++) {

            holdout = (vn[i].name.len == ngx_http_retarget_holdout_name.len
                       && ngx_strncmp(vn[i].name.data,
                                      ngx_http_retarget_holdout_name.data,
                                      vn[i].name.len)
                          == 0);

            if (holdout != pass) {
                continue;
            }

            if (ctx->arms->nelts == NGX_HTTP_RETARGET_STATUS_ARMS) {
                ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                               "retarget status: arm \"%V\" not shown, "
                               "too many", &vn[i].name);
                continue;
            }

            arm = ngx_array_push(ctx->arms);
            if (arm == NULL) {
                return NGX_ERROR;
            }

            arm->vn = &vn[i];
            arm->holdout = holdout;

            for (k = 0; k < NGX_HTTP_RETARGET_STATUS_PEOPLE; k++) {
                arm->people[k] = -1;

                if (holdout && k == ngx_http_retarget_people_clickers) {
                    /* no reminder to click */
                    continue;
                }

                cmd = ngx_http_retarget_cmd(cmds, "PFCOUNT");

                if (cmd == NULL
                    || ngx_http_retarget_arg_people(r->pool, rmcf, cmd,
                                                    ctx->date, k,
                                                    &vn[i].name)
                       != NGX_OK)
                {
                    return NGX_ERROR;
                }
            }
        }
    }

    ctx->reads = cmds->nelts;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget status: %ui arms, %ui distinct counts to read",
                   ctx->arms->nelts, ctx->reads);

    return NGX_OK;
}


/*
 * The reply to the n-th PFCOUNT, in the order ngx_http_retarget_status_
 * arms() sent them.  Anything but an integer from 0 to COUNT_MAX (a key
 * of another type answers WRONGTYPE) leaves the number out.
 */

static void
ngx_http_retarget_status_people(ngx_http_request_t *r,
    ngx_http_retarget_status_ctx_t *ctx, redisReply *reply)
{
    ngx_uint_t                       i, k, n;
    ngx_http_retarget_status_arm_t  *arm;

    n = ctx->replies - 1;
    arm = ctx->arms->elts;

    for (i = 0; i < ctx->arms->nelts; i++) {
        for (k = 0; k < NGX_HTTP_RETARGET_STATUS_PEOPLE; k++) {

            if (arm[i].holdout && k == ngx_http_retarget_people_clickers) {
                continue;
            }

            if (n-- != 0) {
                continue;
            }

            if (reply->type != REDIS_REPLY_INTEGER || reply->integer < 0
                || reply->integer > NGX_HTTP_RETARGET_STATUS_COUNT_MAX)
            {
                ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                               "retarget status: %s of \"%V\": reply type "
                               "%d, or out of range: left out",
                               ngx_http_retarget_status_kinds[k],
                               &arm[i].vn->name, reply->type);
                return;
            }

            arm[i].people[k] = reply->integer;

            ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget status: %s of \"%V\": %L distinct",
                           ngx_http_retarget_status_kinds[k],
                           &arm[i].vn->name, arm[i].people[k]);
            return;
        }
    }
}


/*
 * The end of the wait: after the reply (NGX_OK), at the timeout
 * (NGX_AGAIN), or when the link went away first (NGX_ERROR).
 */

static void
ngx_http_retarget_status_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_retarget_status_ctx_t *ctx = data;

    json_t  *today;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget status: counters read ended, rc:%i, %s",
                   rc, ctx->today ? "read" : "none");

    if (rc == NGX_AGAIN) {
        ctx->error = "timeout";

    } else if (rc == NGX_ERROR) {
        ctx->error = "no reply";
    }

    /*
     * With a single read, "done" comes right after "reply", so today's
     * counters are freed here.  ctx goes with r->pool, which the
     * finalization may free: today is kept aside.
     */

    today = ctx->today;

    ngx_http_finalize_request(r, ngx_http_retarget_status_send(r, ctx));

    json_decref(today);
}


static ngx_int_t
ngx_http_retarget_status_send(ngx_http_request_t *r,
    ngx_http_retarget_status_ctx_t *ctx)
{
    ngx_int_t   rc;
    ngx_str_t   body, *type;

    static ngx_str_t  json_type = ngx_string("application/json");
    static ngx_str_t  prom_type = ngx_string("text/plain; version=0.0.4");

    if (ctx->prometheus) {
        type = &prom_type;
        rc = ngx_http_retarget_status_prometheus(r, ctx, &body);

    } else {
        type = &json_type;
        rc = ngx_http_retarget_status_json(r, ctx, &body);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "retarget status: %uz bytes%s", body.len,
                   ctx->error ? ", with an error" : "");

    /* the body is in r->pool already: no copy */

    return ngx_http_retarget_send(r, NGX_HTTP_OK, type, body.data, body.len,
                                  0);
}


/*
 * HGETALL's reply: field, value, field, value...  A value that is an
 * integer becomes a number, anything else (revenue: "12.50") a string.
 * Fields that are not strings, or not UTF-8, are left out.  NULL, with
 * *error set, when there is nothing to show.
 */

static json_t *
ngx_http_retarget_status_today(ngx_http_request_t *r, redisReply *reply,
    const char **error)
{
    size_t       i;
    json_t      *today, *v;
    ngx_str_t    safe;
    json_int_t   n;
    redisReply  *f, *e;

    if (reply->type == REDIS_REPLY_ERROR) {
        /* a key of another type: WRONGTYPE */
        ngx_http_retarget_log_value(r->pool, (u_char *) reply->str,
                                    reply->len, &safe);
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "retarget status: HGETALL: \"%V\"", &safe);
        *error = "redis error";
        return NULL;
    }

    if (reply->type != REDIS_REPLY_ARRAY) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "retarget status: unexpected reply type %d to HGETALL",
                      reply->type);
        *error = "unexpected reply";
        return NULL;
    }

    today = json_object();
    if (today == NULL) {
        *error = "out of memory";
        return NULL;
    }

    for (i = 0; i + 1 < reply->elements; i += 2) {
        f = reply->element[i];
        e = reply->element[i + 1];

        if (f == NULL || e == NULL
            || f->type != REDIS_REPLY_STRING || e->type != REDIS_REPLY_STRING
            || f->len == 0 || ngx_strlchr((u_char *) f->str,
                                          (u_char *) f->str + f->len, '\0'))
        {
            continue;
        }

        if (ngx_http_retarget_status_integer((u_char *) e->str, e->len, &n)
            == NGX_OK)
        {
            v = json_integer(n);

        } else {
            v = json_stringn(e->str, e->len);
        }

        /* fails, and frees v, on a key that is not UTF-8 */
        (void) json_object_setn_new(today, f->str, f->len, v);
    }

    return today;
}


/* [-]digits, at most 18 of them: it fits in json_int_t */

static ngx_int_t
ngx_http_retarget_status_integer(u_char *p, size_t len, json_int_t *n)
{
    u_char      *last;
    json_int_t   v;
    ngx_uint_t   neg;

    neg = 0;

    if (len && *p == '-') {
        neg = 1;
        p++;
        len--;
    }

    if (len == 0 || len > 18) {
        return NGX_ERROR;
    }

    v = 0;

    for (last = p + len; p < last; p++) {
        if (*p < '0' || *p > '9') {
            return NGX_ERROR;
        }

        v = v * 10 + (*p - '0');
    }

    *n = neg ? -v : v;

    return NGX_OK;
}


/* [-]digits[.digits]: what Prometheus may take verbatim */

static ngx_int_t
ngx_http_retarget_status_decimal(u_char *p, size_t len)
{
    u_char      *last;
    ngx_uint_t   digits, dot;

    if (len && *p == '-') {
        p++;
        len--;
    }

    digits = 0;
    dot = 0;

    for (last = p + len; p < last; p++) {

        if (*p >= '0' && *p <= '9') {
            digits++;

        } else if (*p == '.' && !dot) {
            dot = 1;

        } else {
            return NGX_ERROR;
        }
    }

    return digits ? NGX_OK : NGX_ERROR;
}


/* the used slots, and the sums over the workers that are alive */

static ngx_array_t *
ngx_http_retarget_status_rows(ngx_http_request_t *r,
    ngx_http_retarget_status_row_t *totals)
{
    ngx_uint_t                          i, k;
    ngx_array_t                        *rows;
    ngx_msec_int_t                      ago;
    ngx_http_retarget_main_conf_t      *rmcf;
    ngx_http_retarget_status_row_t     *row;
    ngx_http_retarget_status_shm_t     *shm;
    ngx_http_retarget_status_metric_t  *m;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);
    shm = rmcf->status_zone->data;

    ngx_memzero(totals, sizeof(ngx_http_retarget_status_row_t));

    rows = ngx_array_create(r->pool, 4,
                            sizeof(ngx_http_retarget_status_row_t));
    if (rows == NULL) {
        return NULL;
    }

    for (i = 0; i < NGX_HTTP_RETARGET_STATUS_SLOTS; i++) {

        if (shm->slots[i].pid == 0) {
            continue;
        }

        row = ngx_array_push(rows);
        if (row == NULL) {
            return NULL;
        }

        ngx_http_retarget_status_read_slot(&shm->slots[i], &row->s);

        ago = (ngx_msec_int_t) (ngx_current_msec - row->s.updated);
        row->ago = ago > 0 ? (ngx_msec_t) ago : 0;
        row->gone = (row->ago > NGX_HTTP_RETARGET_STATUS_GONE);
        row->link_up = (row->s.link == ngx_http_retarget_link_up);

        if (row->s.link > ngx_http_retarget_link_up) {
            row->s.link = ngx_http_retarget_link_down;
        }

        if (row->gone) {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "retarget status: pid %uA gone, silent %M ms",
                           row->s.pid, row->ago);
            continue;
        }

        for (m = ngx_http_retarget_status_metrics; m->name; m++) {
            if (m->key != NULL) {
                *ngx_http_retarget_status_value(totals, m)
                    += *ngx_http_retarget_status_value(row, m);
            }
        }

        for (k = 0; k < NGX_HTTP_RETARGET_OUTCOMES; k++) {
            totals->s.decisions[k] += row->s.decisions[k];
        }
    }

    return rows;
}


/* the number of a metric in a row */

static ngx_atomic_uint_t *
ngx_http_retarget_status_value(ngx_http_retarget_status_row_t *row,
    ngx_http_retarget_status_metric_t *m)
{
    return (ngx_atomic_uint_t *) ((u_char *) row + m->offset);
}


/* adds the counters of a worker or of the totals; 0, or -1 on failure */

static int
ngx_http_retarget_status_counters(json_t *o,
    ngx_http_retarget_status_row_t *row)
{
    int                                 err;
    json_t                             *inj;
    ngx_uint_t                          k;
    ngx_atomic_uint_t                  *n;
    ngx_http_retarget_status_metric_t  *m;
    ngx_http_retarget_status_metric_t  *keyed[NGX_HTTP_RETARGET_STATUS_KEYS];

    err = 0;

    /* the keys come out in the order they are set */

    for (m = ngx_http_retarget_status_metrics; m->name; m++) {
        if (m->key != NULL) {
            keyed[m->key_order] = m;
        }
    }

    for (k = 0; k < NGX_HTTP_RETARGET_STATUS_KEYS; k++) {
        n = ngx_http_retarget_status_value(row, keyed[k]);
        err |= json_object_set_new(o, keyed[k]->key,
                                   json_integer((json_int_t) *n));
    }

    inj = json_object();
    if (inj == NULL) {
        return -1;
    }

    for (k = 0; k < NGX_HTTP_RETARGET_OUTCOMES; k++) {
        if (k == ngx_http_retarget_decision_none) {
            continue;
        }

        /* the names are NUL-terminated literals */
        err |= json_object_set_new(inj,
                                   (char *) ngx_http_retarget_decisions[k].data,
                                   json_integer((json_int_t)
                                                row->s.decisions[k]));
    }

    err |= json_object_set_new(o, "injections", inj);

    return err ? -1 : 0;
}


static json_t *
ngx_http_retarget_status_worker(ngx_http_retarget_status_row_t *row)
{
    int          err;
    json_t      *w;
    const char  *link;

    w = json_object();
    if (w == NULL) {
        return NULL;
    }

    link = ngx_http_retarget_status_links[row->s.link];

    err = json_object_set_new(w, "pid", json_integer((json_int_t) row->s.pid));
    err |= json_object_set_new(w, "link", json_string(link));
    err |= ngx_http_retarget_status_counters(w, row);
    err |= json_object_set_new(w, "started",
                               json_integer((json_int_t) row->s.started));
    err |= json_object_set_new(w, "updated_ms_ago",
                               json_integer((json_int_t) row->ago));
    err |= json_object_set_new(w, "gone", json_boolean(row->gone));

    if (err) {
        json_decref(w);
        return NULL;
    }

    return w;
}


/*
 * The JSON document, in r->pool.  The setters take their value and fail
 * on a NULL object or value, freeing what they were given: an allocation
 * that failed on the way shows up as err at the end.
 */

static ngx_int_t
ngx_http_retarget_status_json(ngx_http_request_t *r,
    ngx_http_retarget_status_ctx_t *ctx, ngx_str_t *out)
{
    int                              err;
    json_t                          *root, *workers, *totals, *redis;
    ngx_str_t                       *addr;
    ngx_uint_t                       i;
    ngx_array_t                     *rows;
    ngx_http_retarget_main_conf_t   *rmcf;
    ngx_http_retarget_status_row_t  *row, sum;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_retarget_module);

    rows = ngx_http_retarget_status_rows(r, &sum);
    if (rows == NULL) {
        return NGX_ERROR;
    }

    root = json_object();
    if (root == NULL) {
        return NGX_ERROR;
    }

    /* the keys come out in the order they are set */

    workers = json_array();
    totals = json_object();
    redis = json_object();

    err = json_object_set_new(root, "workers", workers);
    err |= json_object_set_new(root, "totals", totals);
    err |= json_object_set_new(root, "redis", redis);

    row = rows->elts;

    for (i = 0; i < rows->nelts; i++) {
        err |= json_array_append_new(workers,
                                     ngx_http_retarget_status_worker(&row[i]));
    }

    err |= ngx_http_retarget_status_counters(totals, &sum);

    addr = &rmcf->redis.name;

    err |= json_object_set_new(redis, "configured",
                               json_boolean(addr->len != 0));
    err |= json_object_set_new(redis, "address",
                               addr->len ? json_stringn((char *) addr->data,
                                                        addr->len)
                                         : json_null());

    /* the weights this worker gives new visitors (retarget_optimize) */
    err |= ngx_http_retarget_optimize_status(root, rmcf);

    if (ctx->date[0]) {
        err |= json_object_set_new(root, "date",
                                   json_stringn((char *) ctx->date,
                                                sizeof(ctx->date)));
    }

    if (ctx->arms != NULL && (ctx->today != NULL || ctx->replies)) {
        err |= json_object_set_new(root, "arms",
                                   ngx_http_retarget_status_arms_json(ctx));
    }

    /* today is ctx's: borrowed */
    err |= json_object_set(root, "today",
                           ctx->today ? ctx->today : json_null());

    if (ctx->error != NULL) {
        err |= json_object_set_new(root, "redis_error",
                                   json_string(ctx->error));
    }

    if (err) {
        json_decref(root);
        return NGX_ERROR;
    }

    return ngx_http_retarget_json_document(r->pool, root, JSON_COMPACT, out);
}


static ngx_int_t
ngx_http_retarget_status_prometheus(ngx_http_request_t *r,
    ngx_http_retarget_status_ctx_t *ctx, ngx_str_t *out)
{
    u_char                          *p, *last;
    size_t                           len;
    ngx_array_t                     *rows;
    ngx_http_retarget_status_row_t   sum;

    rows = ngx_http_retarget_status_rows(r, &sum);
    if (rows == NULL) {
        return NGX_ERROR;
    }

    len = ngx_http_retarget_status_prom_size(rows, ctx->today)
          + ngx_http_retarget_status_prom_arms_size(ctx);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;
    last = p + len;

    p = ngx_http_retarget_status_prom_workers(p, last, rows);
    p = ngx_http_retarget_status_prom_arms(p, last, ctx);
    p = ngx_http_retarget_status_prom_today(p, last, ctx->today);

    out->len = p - out->data;

    return NGX_OK;
}


/* an upper bound of the length of the text: it is written in one piece */

static size_t
ngx_http_retarget_status_prom_size(ngx_array_t *rows, json_t *today)
{
    size_t                              len;
    json_t                             *v;
    ngx_uint_t                          i, live;
    const char                         *key;
    ngx_http_retarget_status_row_t     *row;
    ngx_http_retarget_status_metric_t  *m;

    row = rows->elts;
    live = 0;

    for (i = 0; i < rows->nelts; i++) {
        if (!row[i].gone) {
            live++;
        }
    }

    len = sizeof(NGX_HTTP_RETARGET_PROM_INJECTIONS)
          + live * NGX_HTTP_RETARGET_OUTCOMES
            * (sizeof("retarget_injections_total")
               + NGX_HTTP_RETARGET_PROM_LINE)
          + sizeof(NGX_HTTP_RETARGET_PROM_AVAILABLE)
          + sizeof(NGX_HTTP_RETARGET_PROM_TODAY);

    for (m = ngx_http_retarget_status_metrics; m->name; m++) {
        len += sizeof("# HELP  \n# TYPE  \n") + 2 * ngx_strlen(m->name)
               + ngx_strlen(m->help) + ngx_strlen(m->type)
               + live * (ngx_strlen(m->name) + NGX_HTTP_RETARGET_PROM_LINE);
    }

    if (today != NULL) {
        json_object_foreach(today, key, v) {
            /* a label value escapes to at most twice its length */
            len += sizeof(NGX_HTTP_RETARGET_PROM_FIELD "\"} \n")
                   + 2 * ngx_strlen(key) + NGX_INT64_LEN
                   + (json_is_string(v) ? json_string_length(v) : 0);
        }
    }

    return len;
}


/* the metric families of the workers that are alive */

static u_char *
ngx_http_retarget_status_prom_workers(u_char *p, u_char *last,
    ngx_array_t *rows)
{
    ngx_uint_t                          i, k;
    ngx_atomic_uint_t                  *n;
    ngx_http_retarget_status_row_t     *row;
    ngx_http_retarget_status_metric_t  *m;

    row = rows->elts;

    for (m = ngx_http_retarget_status_metrics; m->name; m++) {
        p = ngx_slprintf(p, last, "# HELP %s %s\n# TYPE %s %s\n",
                         m->name, m->help, m->name, m->type);

        for (i = 0; i < rows->nelts; i++) {
            if (row[i].gone) {
                continue;
            }

            n = ngx_http_retarget_status_value(&row[i], m);

            p = ngx_slprintf(p, last, "%s{worker=\"%uA\"} %uA\n",
                             m->name, row[i].s.pid, *n);
        }
    }

    p = ngx_slprintf(p, last, NGX_HTTP_RETARGET_PROM_INJECTIONS);

    for (i = 0; i < rows->nelts; i++) {
        if (row[i].gone) {
            continue;
        }

        for (k = 0; k < NGX_HTTP_RETARGET_OUTCOMES; k++) {
            if (k == ngx_http_retarget_decision_none) {
                continue;
            }

            p = ngx_slprintf(p, last,
                             "retarget_injections_total"
                             "{worker=\"%uA\",outcome=\"%V\"} %uA\n",
                             row[i].s.pid, &ngx_http_retarget_decisions[k],
                             row[i].s.decisions[k]);
        }
    }

    return p;
}


/* today's counters that are numbers: Prometheus has no place for others */

static u_char *
ngx_http_retarget_status_prom_today(u_char *p, u_char *last, json_t *today)
{
    size_t       len;
    json_t      *v;
    const char  *key;

    p = ngx_slprintf(p, last, NGX_HTTP_RETARGET_PROM_AVAILABLE,
                     today != NULL);

    if (today == NULL) {
        return p;
    }

    p = ngx_slprintf(p, last, NGX_HTTP_RETARGET_PROM_TODAY);

    json_object_foreach(today, key, v) {

        if (json_is_string(v)) {
            if (ngx_http_retarget_status_decimal(
                    (u_char *) json_string_value(v), json_string_length(v))
                != NGX_OK)
            {
                continue;
            }

        } else if (!json_is_integer(v)) {
            continue;
        }

        /* the label is written unbounded */

        len = ngx_strlen(key);

        if ((size_t) (last - p)
            < sizeof(NGX_HTTP_RETARGET_PROM_FIELD) + 2 * len)
        {
            break;
        }

        p = ngx_cpymem(p, NGX_HTTP_RETARGET_PROM_FIELD,
                       sizeof(NGX_HTTP_RETARGET_PROM_FIELD) - 1);
        p = ngx_http_retarget_status_label(p, (u_char *) key, len);

        if (json_is_integer(v)) {
            p = ngx_slprintf(p, last, "\"} %L\n",
                             (int64_t) json_integer_value(v));

        } else {
            p = ngx_slprintf(p, last, "\"} %*s\n",
                             json_string_length(v), json_string_value(v));
        }
    }

    return p;
}


/*
 * The number of a metric for an arm: *n, or *dec when today's hash has a
 * decimal (an amount, "12.50", or a count too large for an integer).
 * NGX_DECLINED when there is none: not read, not for this arm, or not a
 * number (whatever else wrote the hash).  A field not in today's hash is
 * 0: nothing happened yet today.
 */

static ngx_int_t
ngx_http_retarget_status_arm_value(ngx_http_retarget_status_ctx_t *ctx,
    ngx_http_retarget_status_arm_t *arm,
    ngx_http_retarget_status_arm_metric_t *m, int64_t *n, ngx_str_t *dec)
{
    u_char     buf[sizeof("eligible:") + NGX_HTTP_RETARGET_STATUS_NAME_MAX];
    json_t    *v;
    ngx_str_t  field;

    dec->len = 0;

    if (!(m->arms & (arm->holdout ? NGX_HTTP_RETARGET_ARM_HOLDOUT
                                  : NGX_HTTP_RETARGET_ARM_VARIANT)))
    {
        return NGX_DECLINED;
    }

    if (m->people >= 0) {
        *n = arm->people[m->people];
        return (*n >= 0) ? NGX_OK : NGX_DECLINED;
    }

    if (ctx->today == NULL) {
        return NGX_DECLINED;
    }

    if (m->counter >= 0) {
        field = arm->vn->counters[m->counter];

    } else {
        /* the holdout's eligible pages: "eligible:holdout" (campaign.c) */
        if (arm->vn->name.len > NGX_HTTP_RETARGET_STATUS_NAME_MAX) {
            return NGX_DECLINED;
        }

        field.data = buf;
        field.len = ngx_sprintf(buf, "eligible:%V", &arm->vn->name) - buf;
    }

    v = json_object_getn(ctx->today, (char *) field.data, field.len);

    if (v == NULL) {
        *n = 0;
        return NGX_OK;
    }

    if (json_is_integer(v)) {
        *n = (int64_t) json_integer_value(v);
        return NGX_OK;
    }

    if (json_is_string(v)
        && ngx_http_retarget_status_decimal((u_char *) json_string_value(v),
                                            json_string_length(v))
           == NGX_OK)
    {
        dec->data = (u_char *) json_string_value(v);
        dec->len = json_string_length(v);
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/* {"A": {"eligible_visitors": 3, ..., "revenue": "12.50"}, ...} */

static json_t *
ngx_http_retarget_status_arms_json(ngx_http_retarget_status_ctx_t *ctx)
{
    int                                     err;
    json_t                                 *arms, *o;
    int64_t                                 n;
    ngx_str_t                               dec;
    ngx_uint_t                              i;
    ngx_http_retarget_status_arm_t         *arm;
    ngx_http_retarget_status_arm_metric_t  *m;

    arms = json_object();
    if (arms == NULL) {
        return NULL;
    }

    err = 0;
    arm = ctx->arms->elts;

    for (i = 0; i < ctx->arms->nelts; i++) {
        o = json_object();

        for (m = ngx_http_retarget_status_arm_metrics; o && m->name; m++) {
            if (ngx_http_retarget_status_arm_value(ctx, &arm[i], m, &n, &dec)
                != NGX_OK)
            {
                continue;
            }

            err |= json_object_set_new(o, m->name,
                                       dec.len ? json_stringn((char *) dec.data,
                                                              dec.len)
                                               : json_integer((json_int_t) n));
        }

        /* the names are [A-Za-z0-9_-]: UTF-8 */
        err |= json_object_setn_new(arms, (char *) arm[i].vn->name.data,
                                    arm[i].vn->name.len, o);
    }

    if (err) {
        json_decref(arms);
        return NULL;
    }

    return arms;
}


/* an upper bound of the per-arm lines */

static size_t
ngx_http_retarget_status_prom_arms_size(ngx_http_retarget_status_ctx_t *ctx)
{
    size_t                                  len;
    int64_t                                 n;
    ngx_str_t                               dec;
    ngx_uint_t                              i;
    ngx_http_retarget_status_arm_t         *arm;
    ngx_http_retarget_status_arm_metric_t  *m;

    if (ctx->arms == NULL) {
        return 0;
    }

    len = 0;
    arm = ctx->arms->elts;

    for (m = ngx_http_retarget_status_arm_metrics; m->name; m++) {
        len += sizeof("# HELP  \n# TYPE  gauge\n")
               + 2 * (sizeof(NGX_HTTP_RETARGET_PROM_ARM) + ngx_strlen(m->name))
               + ngx_strlen(m->help);

        for (i = 0; i < ctx->arms->nelts; i++) {
            if (ngx_http_retarget_status_arm_value(ctx, &arm[i], m, &n, &dec)
                == NGX_OK)
            {
                len += sizeof(NGX_HTTP_RETARGET_PROM_ARM "{arm=\"\"} \n")
                       + ngx_strlen(m->name) + arm[i].vn->name.len
                       + NGX_INT64_LEN + dec.len;
            }
        }
    }

    return len;
}


/*
 * retarget_arm_NAME{arm="A"} N: gauges, today's (they start again at 0
 * at midnight UTC).  A family with no arm to show is left out.
 */

static u_char *
ngx_http_retarget_status_prom_arms(u_char *p, u_char *last,
    ngx_http_retarget_status_ctx_t *ctx)
{
    int64_t                                 n;
    ngx_str_t                               dec;
    ngx_uint_t                              i, head;
    ngx_http_retarget_status_arm_t         *arm;
    ngx_http_retarget_status_arm_metric_t  *m;

    if (ctx->arms == NULL) {
        return p;
    }

    arm = ctx->arms->elts;

    for (m = ngx_http_retarget_status_arm_metrics; m->name; m++) {
        head = 0;

        for (i = 0; i < ctx->arms->nelts; i++) {
            if (ngx_http_retarget_status_arm_value(ctx, &arm[i], m, &n, &dec)
                != NGX_OK)
            {
                continue;
            }

            if (!head) {
                head = 1;
                p = ngx_slprintf(p, last,
                                 "# HELP " NGX_HTTP_RETARGET_PROM_ARM "%s %s\n"
                                 "# TYPE " NGX_HTTP_RETARGET_PROM_ARM "%s gauge\n",
                                 m->name, m->help, m->name);
            }

            /* the arm names are [A-Za-z0-9_-]: nothing to escape */

            if (dec.len) {
                p = ngx_slprintf(p, last,
                                 NGX_HTTP_RETARGET_PROM_ARM "%s{arm=\"%V\"} %V\n",
                                 m->name, &arm[i].vn->name, &dec);

            } else {
                p = ngx_slprintf(p, last,
                                 NGX_HTTP_RETARGET_PROM_ARM "%s{arm=\"%V\"} %L\n",
                                 m->name, &arm[i].vn->name, n);
            }
        }
    }

    return p;
}


/* a label value: backslash, double quote and newline are escaped */

static u_char *
ngx_http_retarget_status_label(u_char *dst, u_char *src, size_t len)
{
    u_char  *last;

    for (last = src + len; src < last; src++) {

        switch (*src) {

        case '\\':
        case '"':
            *dst++ = '\\';
            *dst++ = *src;
            break;

        case LF:
            *dst++ = '\\';
            *dst++ = 'n';
            break;

        default:
            *dst++ = *src;
        }
    }

    return dst;
}
