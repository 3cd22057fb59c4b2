
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The campaign results ("location /retarget_report { retarget_report; }"):
 * what the report reads from Redis and computes, as the HTML page, the
 * JSON and the CSV show it.  report.c reads and computes; report_out.c
 * writes JSON and CSV, report_html.c the page; neither calls back.
 */


#ifndef _NGX_HTTP_RETARGET_REPORT_H_INCLUDED_
#define _NGX_HTTP_RETARGET_REPORT_H_INCLUDED_


#include "ngx_http_retarget_module.h"
#include "ngx_http_retarget_money.h"
#include "ngx_http_retarget_stats.h"


#define NGX_HTTP_RETARGET_REPORT_DAYS       14     /* ?days= by default */
#define NGX_HTTP_RETARGET_REPORT_DAYS_MAX   90     /* the HLLs live 100 */
#define NGX_HTTP_RETARGET_REPORT_RECENT     7      /* days of the rate */
#define NGX_HTTP_RETARGET_REPORT_WEIGHTS    1000   /* the optimizer keeps */


typedef enum {
    ngx_http_retarget_format_html = 0,
    ngx_http_retarget_format_json,
    ngx_http_retarget_format_csv
} ngx_http_retarget_report_format_e;


/*
 * The counters of an arm on a day: first the daily hash's, in the order
 * of ngx_http_retarget_vcounter_e (module.h: a field's index there is
 * its index here), then the day's HLLs.
 */
typedef enum {
    ngx_http_retarget_rd_impressions = 0,  /* holdout: eligible:holdout */
    ngx_http_retarget_rd_clicks,
    ngx_http_retarget_rd_conversions,      /* today's click attribution */
    ngx_http_retarget_rd_revenue,
    ngx_http_retarget_rd_view_conversions, /* ... and view attribution */
    ngx_http_retarget_rd_view_revenue,
    ngx_http_retarget_rd_buyers,           /* intent-to-treat purchases */
    ngx_http_retarget_rd_buyer_revenue,
    ngx_http_retarget_rd_squares,
    ngx_http_retarget_rd_eligible,         /* PFCOUNT of the day */
    ngx_http_retarget_rd_converters,
    ngx_http_retarget_rd_count
} ngx_http_retarget_report_daily_e;


/* the distinct visitors over the report's days: PFCOUNT of the union */
typedef enum {
    ngx_http_retarget_rp_eligible = 0,
    ngx_http_retarget_rp_clickers,
    ngx_http_retarget_rp_converters,
    ngx_http_retarget_rp_click_converters,
    ngx_http_retarget_rp_view_converters,
    ngx_http_retarget_rp_before,           /* eligible before the recent
                                              days: the recent rate */
    ngx_http_retarget_rp_count
} ngx_http_retarget_report_people_e;


typedef struct {
    double                         v[ngx_http_retarget_rd_count];
} ngx_http_retarget_report_day_t;


typedef struct {
    ngx_str_t                      name;
    ngx_uint_t                     holdout;       /* the holdout arm */
    ngx_uint_t                     variant;       /* its index, if not */
    double                         configured;    /* share of traffic */
    double                         current;       /* optimizer's, or -1 */

    ngx_http_retarget_report_day_t *days;
    double                         sum[ngx_http_retarget_rd_count];
    double                         people[ngx_http_retarget_rp_count];
    double                         recent;        /* new eligible a day */

    ngx_http_retarget_interval_t   per_visitor;   /* impressions */
    ngx_http_retarget_interval_t   click_rate;    /* none for the holdout */
    ngx_http_retarget_interval_t   conversion_rate;
    ngx_http_retarget_interval_t   revenue;       /* per eligible visitor */
} ngx_http_retarget_report_arm_t;


typedef enum {
    ngx_http_retarget_verdict_early = 0,   /* an arm under 150 */
    ngx_http_retarget_verdict_better,
    ngx_http_retarget_verdict_worse,
    ngx_http_retarget_verdict_same,        /* narrow, and includes 0 */
    ngx_http_retarget_verdict_waiting,     /* about N more days */
    ngx_http_retarget_verdict_too_slow     /* more than a year */
} ngx_http_retarget_verdict_e;


/* arm b against arm a */
typedef struct {
    ngx_uint_t                     a;
    ngx_uint_t                     b;
    ngx_http_retarget_interval_t   diff;
    ngx_http_retarget_interval_t   rel;
    double                         days;          /* -1: over a year */
    ngx_http_retarget_verdict_e    verdict;
} ngx_http_retarget_report_cmp_t;


typedef enum {
    ngx_http_retarget_srm_none = 0,        /* a single arm */
    ngx_http_retarget_srm_configured,      /* every arm, its weight */
    ngx_http_retarget_srm_holdout          /* holdout against variants */
} ngx_http_retarget_srm_e;


#define NGX_HTTP_RETARGET_REPORT_GROUPS_MAX  64

typedef struct {
    ngx_http_retarget_srm_e        mode;
    ngx_uint_t                     groups;
    double                observed[NGX_HTTP_RETARGET_REPORT_GROUPS_MAX];
    double                share[NGX_HTTP_RETARGET_REPORT_GROUPS_MAX];
    double                         p;             /* -1: not computed */
    ngx_uint_t                     checked;       /* each group >= 8 */
    ngx_uint_t                     mismatch;
} ngx_http_retarget_report_srm_t;


/* a period of the optimizer: its start and a weight of each variant */
typedef struct {
    time_t                         start;
    double                        *w;
    unsigned                       configured:1;  /* under "min": as set */
} ngx_http_retarget_report_weights_t;


typedef struct {
    ngx_http_retarget_report_format_e  format;
    ngx_uint_t                     ndays;
    u_char                        (*dates)[8];   /* YYYYMMDD, UTC */
    time_t                         now;
    time_t                         start;         /* of the first day */
    double                         recent_days;   /* the rate's span */

    ngx_uint_t                     narms;
    ngx_uint_t                     nvariants;
    ngx_uint_t                     holdout;       /* percent, 0: no arm */
    ngx_http_retarget_report_arm_t *arms;         /* variants, holdout */

    ngx_uint_t                     ncmps;
    ngx_http_retarget_report_cmp_t *cmps;

    ngx_http_retarget_report_srm_t srm;

    ngx_uint_t                     nweights;      /* oldest first */
    ngx_http_retarget_report_weights_t *weights;

    ngx_http_retarget_currency_t  *currency;
} ngx_http_retarget_report_t;


char *ngx_http_retarget_report_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* report_out.c, report_html.c: the body, in r->pool */
ngx_int_t ngx_http_retarget_report_json(ngx_http_request_t *r,
    ngx_http_retarget_report_t *rp, ngx_str_t *out);
ngx_int_t ngx_http_retarget_report_csv(ngx_http_request_t *r,
    ngx_http_retarget_report_t *rp, ngx_str_t *out);
ngx_int_t ngx_http_retarget_report_page(ngx_http_request_t *r,
    ngx_http_retarget_report_t *rp, ngx_str_t *out);
ngx_int_t ngx_http_retarget_report_error(ngx_http_request_t *r,
    ngx_http_retarget_report_format_e format, const char *message,
    ngx_str_t *out, ngx_str_t *type);
ngx_int_t ngx_http_retarget_report_error_page(ngx_http_request_t *r,
    const char *message, ngx_str_t *out, ngx_str_t *type);

/* report_out.c: the plain words of a verdict, for every format */
#define NGX_HTTP_RETARGET_REPORT_VERDICT_LEN  256
u_char *ngx_http_retarget_report_verdict(ngx_http_retarget_report_t *rp,
    ngx_http_retarget_report_cmp_t *c, u_char *buf, u_char *last);
const char *ngx_http_retarget_report_verdict_code(
    ngx_http_retarget_verdict_e v);


#endif /* _NGX_HTTP_RETARGET_REPORT_H_INCLUDED_ */
