
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * The campaign directives: when a reminder may be shown (delay, window,
 * frequency), what it offers (incentives), how it looks (variants), and
 * how its effect is measured (holdout, attribution).  Every variant name
 * is also registered in the main configuration, with its counter names
 * built once, so that clicks and conversions can be counted by name.
 */


#include "ngx_http_retarget_campaign.h"
#include "ngx_http_retarget_banner.h"
#include "ngx_http_retarget_optimize.h"
#include "ngx_http_retarget_store.h"
#include "ngx_http_retarget_template.h"
#include "ngx_http_retarget_url.h"


#define NGX_HTTP_RETARGET_VARIANT_MAX  32


static ngx_http_retarget_variant_name_t *ngx_http_retarget_variant_register(
    ngx_conf_t *cf, ngx_str_t *name);
static ngx_int_t ngx_http_retarget_variant_name_valid(ngx_str_t *name);


static ngx_str_t  ngx_http_retarget_vc_prefixes[] = {
    ngx_string("impressions:"),
    ngx_string("clicks:"),
    ngx_string("conversions:"),
    ngx_string("revenue:"),
    ngx_string("view_conversions:"),
    ngx_string("view_revenue:"),
    ngx_string("buyers:"),
    ngx_string("buyer_revenue:"),
    ngx_string("squares:")            /* not "revenue": a count, not cents */
};


static ngx_str_t  ngx_http_retarget_default_variant = ngx_string("banner");
ngx_str_t  ngx_http_retarget_holdout_name = ngx_string("holdout");


void
ngx_http_retarget_campaign_create(ngx_http_retarget_campaign_t *cp)
{
    /*
     * set by ngx_pcalloc() of the location configuration:
     *
     *     cp->link = { 0, NULL };
     *     cp->total_weight = 0;
     */

    cp->enable = NGX_CONF_UNSET;
    cp->delay = NGX_CONF_UNSET;
    cp->window = NGX_CONF_UNSET;
    cp->cart_lifetime = NGX_CONF_UNSET;
    cp->frequency = NGX_CONF_UNSET_UINT;
    cp->period = NGX_CONF_UNSET;
    cp->pages = NGX_CONF_UNSET_UINT;
    cp->visit_gap = NGX_CONF_UNSET;
    cp->incentives = NGX_CONF_UNSET_PTR;
    cp->variants = NGX_CONF_UNSET_PTR;
    cp->holdout = NGX_CONF_UNSET_UINT;
    cp->click_window = NGX_CONF_UNSET;
    cp->view_window = NGX_CONF_UNSET;
    cp->currency = NGX_CONF_UNSET_PTR;
    cp->optimize = NGX_CONF_UNSET_PTR;
}


char *
ngx_http_retarget_campaign_merge(ngx_conf_t *cf,
    ngx_http_retarget_campaign_t *prev, ngx_http_retarget_campaign_t *conf)
{
    ngx_uint_t                      strict;
    ngx_http_retarget_variant_t    *v;
    ngx_http_retarget_main_conf_t  *rmcf;

    /*
     * Variants of its own or "retarget_campaign on" here: this level
     * means its variants to be shown, so an optimizer in force must be
     * able to re-weight them (retarget_optimize's merge)
     */
    strict = (conf->variants != NGX_CONF_UNSET_PTR || conf->enable == 1);

    if (conf->enable == NGX_CONF_UNSET) {
        conf->enable = (prev->enable == NGX_CONF_UNSET) ? 1 : prev->enable;
        conf->link = prev->link;
    }

    ngx_conf_merge_sec_value(conf->delay, prev->delay, 30 * 60);

    /*
     * 7 days: a published test of on-site cart reminders found a lift
     * only when they were limited to carts abandoned within a week
     * (PLATFORMS.md, issue 11)
     */
    ngx_conf_merge_sec_value(conf->window, prev->window, 7 * 86400);

    /*
     * 0: the shop keeps carts as long as the window (no limit).  A
     * lifetime no longer than the delay is allowed: a location that reads
     * the cart but never reminds of it (a thank-you page) says so with a
     * long delay, under a server's lifetime.
     */
    ngx_conf_merge_sec_value(conf->cart_lifetime, prev->cart_lifetime, 0);

    /* one directive: its four values are inherited together */

    if (conf->frequency == NGX_CONF_UNSET_UINT) {
        conf->frequency = (prev->frequency == NGX_CONF_UNSET_UINT)
                          ? 3 : prev->frequency;
        conf->period = (prev->period == NGX_CONF_UNSET)
                       ? 86400 : prev->period;
        conf->pages = (prev->pages == NGX_CONF_UNSET_UINT)
                      ? 1 : prev->pages;
        conf->visit_gap = (prev->visit_gap == NGX_CONF_UNSET)
                          ? 30 * 60 : prev->visit_gap;
    }

    ngx_conf_merge_ptr_value(conf->incentives, prev->incentives, NULL);
    ngx_conf_merge_uint_value(conf->holdout, prev->holdout, 0);
    ngx_conf_merge_ptr_value(conf->currency, prev->currency, NULL);

    if (conf->click_window == NGX_CONF_UNSET) {
        conf->click_window = (prev->click_window == NGX_CONF_UNSET)
                             ? 7 * 86400 : prev->click_window;
        conf->view_window = (prev->view_window == NGX_CONF_UNSET)
                            ? 86400 : prev->view_window;
    }

    if (conf->variants == NGX_CONF_UNSET_PTR) {

        if (prev->variants == NGX_CONF_UNSET_PTR) {
            /* the built-in banner, shared by every level without variants */
            rmcf = ngx_http_conf_get_module_main_conf(cf,
                                                    ngx_http_retarget_module);

            prev->variants = ngx_array_create(cf->pool, 1,
                                          sizeof(ngx_http_retarget_variant_t));
            if (prev->variants == NULL) {
                return NGX_CONF_ERROR;
            }

            v = ngx_array_push(prev->variants);
            if (v == NULL) {
                return NGX_CONF_ERROR;
            }

            if (rmcf->builtin_banner == NULL
                && ngx_http_retarget_banner_init_conf(cf) != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            v->weight = 1;
            v->tpl = rmcf->builtin_banner;
            v->data_json = ngx_http_retarget_tpl_uses(v->tpl, "data_json");
            v->name = ngx_http_retarget_variant_register(cf,
                                         &ngx_http_retarget_default_variant);
            if (v->name == NULL) {
                return NGX_CONF_ERROR;
            }

            prev->total_weight = 1;
        }

        conf->variants = prev->variants;
        conf->total_weight = prev->total_weight;
    }

    /* after the variants: the optimizer is of the variants in force */
    if (ngx_http_retarget_optimize_merge(cf, prev, conf, strict)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (conf->enable && conf->delay >= conf->window) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"retarget_delay\" (%T s) must be shorter than "
                           "\"retarget_window\" (%T s)",
                           conf->delay, conf->window);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* retarget_campaign on | off [link=/path] */

char *
ngx_http_retarget_campaign_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_retarget_loc_conf_t *rlcf = conf;

    ngx_str_t                     *value, link;
    ngx_http_retarget_campaign_t  *cp;

    cp = &rlcf->campaign;

    if (cp->enable != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "on") == 0) {
        cp->enable = 1;

    } else if (ngx_strcmp(value[1].data, "off") == 0) {
        cp->enable = 0;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\", it must be \"on\" or "
                           "\"off\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "link=", 5) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        link.data = value[2].data + 5;
        link.len = value[2].len - 5;

        if (!ngx_http_retarget_same_site_path(&link)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"link=\" must be a path on this site, "
                               "such as \"/cart\", not \"%V\"", &link);
            return NGX_CONF_ERROR;
        }

        cp->link = link;
    }

    return NGX_CONF_OK;
}


/*
 * retarget_frequency n period [pages=p] [visit=gap]: at most n visits
 * with a reminder per period, at most p pages with one in a visit, and a
 * visit ends after gap without a page.  The old two-argument form keeps
 * its meaning, counted in visits now.
 */

char *
ngx_http_retarget_frequency_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_retarget_loc_conf_t *rlcf = conf;

    time_t       period, gap;
    ngx_int_t    n, pages;
    ngx_str_t   *value, v;
    ngx_uint_t   i;

    if (rlcf->campaign.frequency != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);
    if (n == NGX_ERROR || n < 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid number of visits \"%V\" in \"%V\": "
                           "a number of 1 or more", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    period = ngx_parse_time(&value[2], 1);
    if (period == (time_t) NGX_ERROR || period < 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid period \"%V\" in \"%V\"", &value[2],
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    pages = NGX_CONF_UNSET;
    gap = NGX_CONF_UNSET;

    for (i = 3; i < cf->args->nelts; i++) {

        if (value[i].len > 6
            && ngx_strncmp(value[i].data, "pages=", 6) == 0
            && pages == NGX_CONF_UNSET)
        {
            v.data = value[i].data + 6;
            v.len = value[i].len - 6;

            pages = ngx_atoi(v.data, v.len);
            if (pages == NGX_ERROR || pages < 1) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\" in \"%V\": pages= "
                                   "takes a number of 1 or more",
                                   &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (value[i].len > 6
            && ngx_strncmp(value[i].data, "visit=", 6) == 0
            && gap == NGX_CONF_UNSET)
        {
            v.data = value[i].data + 6;
            v.len = value[i].len - 6;

            gap = ngx_parse_time(&v, 1);
            if (gap == (time_t) NGX_ERROR || gap < 1) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\" in \"%V\": visit= "
                                   "takes a time of 1s or more",
                                   &value[i], &cmd->name);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\"",
                           &value[i], &cmd->name);
        return NGX_CONF_ERROR;
    }

    rlcf->campaign.frequency = n;
    rlcf->campaign.period = period;
    rlcf->campaign.pages = (pages == NGX_CONF_UNSET) ? 1 : pages;
    rlcf->campaign.visit_gap = (gap == NGX_CONF_UNSET) ? 30 * 60 : gap;

    return NGX_CONF_OK;
}


/* retarget_cart_lifetime time | off */

char *
ngx_http_retarget_cart_lifetime_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_retarget_loc_conf_t *rlcf = conf;

    time_t      t;
    ngx_str_t  *value;

    if (rlcf->campaign.cart_lifetime != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        rlcf->campaign.cart_lifetime = 0;
        return NGX_CONF_OK;
    }

    t = ngx_parse_time(&value[1], 1);
    if (t == (time_t) NGX_ERROR || t < 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid time \"%V\" in \"%V\": a time of "
                           "1s or more, or \"off\"", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    rlcf->campaign.cart_lifetime = t;

    return NGX_CONF_OK;
}


/* retarget_incentive after code text [min_total=N] */

char *
ngx_http_retarget_incentive_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_retarget_loc_conf_t *rlcf = conf;

    ngx_str_t                      *value, min;
    ngx_http_retarget_incentive_t  *inc;

    value = cf->args->elts;

    if (rlcf->campaign.incentives == NGX_CONF_UNSET_PTR) {
        rlcf->campaign.incentives = ngx_array_create(cf->pool, 2,
                                        sizeof(ngx_http_retarget_incentive_t));
        if (rlcf->campaign.incentives == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    inc = ngx_array_push(rlcf->campaign.incentives);
    if (inc == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(inc, sizeof(ngx_http_retarget_incentive_t));

    inc->after = ngx_parse_time(&value[1], 1);
    if (inc->after == (time_t) NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid time \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (value[2].len > 5 && ngx_strncmp(value[2].data, "pool:", 5) == 0) {
        inc->pool.data = value[2].data + 5;
        inc->pool.len = value[2].len - 5;

        if (!ngx_http_retarget_variant_name_valid(&inc->pool)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid pool name \"%V\": letters, digits, "
                               "\"_\" and \"-\", at most %d",
                               &inc->pool, NGX_HTTP_RETARGET_VARIANT_MAX);
            return NGX_CONF_ERROR;
        }

    } else if (value[2].len == 0 || value[2].len > 64) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid incentive code \"%V\"", &value[2]);
        return NGX_CONF_ERROR;

    } else {
        inc->code = value[2];
    }

    inc->text = value[3];

    if (cf->args->nelts == 5) {
        if (ngx_strncmp(value[4].data, "min_total=", 10) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[4]);
            return NGX_CONF_ERROR;
        }

        min.data = value[4].data + 10;
        min.len = value[4].len - 10;

        if (ngx_http_retarget_parse_amount(&min, &inc->min_cents) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid amount \"%V\" in \"min_total=\"",
                               &min);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* retarget_variant name weight template|builtin */

char *
ngx_http_retarget_variant_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_retarget_loc_conf_t *rlcf = conf;

    ngx_int_t                       weight;
    ngx_str_t                      *value;
    ngx_uint_t                      i;
    ngx_http_retarget_variant_t    *v;
    ngx_http_retarget_main_conf_t  *rmcf;

    value = cf->args->elts;
    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_retarget_module);

    if (!ngx_http_retarget_variant_name_valid(&value[1])
        || (value[1].len == ngx_http_retarget_holdout_name.len
            && ngx_strncmp(value[1].data, "holdout", 7) == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid variant name \"%V\": letters, digits, "
                           "\"_\" and \"-\", at most %d, and not "
                           "\"holdout\"", &value[1],
                           NGX_HTTP_RETARGET_VARIANT_MAX);
        return NGX_CONF_ERROR;
    }

    weight = ngx_atoi(value[2].data, value[2].len);
    if (weight == NGX_ERROR || weight < 1 || weight > 10000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid weight \"%V\": a number from 1 to 10000",
                           &value[2]);
        return NGX_CONF_ERROR;
    }

    if (rlcf->campaign.variants == NGX_CONF_UNSET_PTR) {
        rlcf->campaign.variants = ngx_array_create(cf->pool, 2,
                                          sizeof(ngx_http_retarget_variant_t));
        if (rlcf->campaign.variants == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    v = rlcf->campaign.variants->elts;

    for (i = 0; i < rlcf->campaign.variants->nelts; i++) {
        if (v[i].name->name.len == value[1].len
            && ngx_strncmp(v[i].name->name.data, value[1].data,
                           value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate variant \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    v = ngx_array_push(rlcf->campaign.variants);
    if (v == NULL) {
        return NGX_CONF_ERROR;
    }

    v->weight = weight;
    rlcf->campaign.total_weight += weight;

    v->name = ngx_http_retarget_variant_register(cf, &value[1]);
    if (v->name == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_strcmp(value[3].data, "builtin") == 0) {
        if (rmcf->builtin_banner == NULL
            && ngx_http_retarget_banner_init_conf(cf) != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        v->tpl = rmcf->builtin_banner;
        v->data_json = ngx_http_retarget_tpl_uses(v->tpl, "data_json");
        return NGX_CONF_OK;
    }

    if (ngx_conf_full_name(cf->cycle, &value[3], 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    v->tpl = ngx_http_retarget_tpl_load(cf, &value[3]);
    if (v->tpl == NULL) {
        return NGX_CONF_ERROR;
    }

    v->data_json = ngx_http_retarget_tpl_uses(v->tpl, "data_json");

    return NGX_CONF_OK;
}


/* retarget_holdout percent */

char *
ngx_http_retarget_holdout_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_retarget_loc_conf_t *rlcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value, v;

    if (rlcf->campaign.holdout != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    v = value[1];

    if (v.len && v.data[v.len - 1] == '%') {
        v.len--;
    }

    n = ngx_atoi(v.data, v.len);
    if (n == NGX_ERROR || n > 100) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid percent \"%V\": a whole number from 0 "
                           "to 100", &value[1]);
        return NGX_CONF_ERROR;
    }

    rlcf->campaign.holdout = n;

    /* its conversions are counted under its own name */
    if (ngx_http_retarget_variant_register(cf,
                                           &ngx_http_retarget_holdout_name)
        == NULL)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* retarget_attribution click=T view=T */

char *
ngx_http_retarget_attribution_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_retarget_loc_conf_t *rlcf = conf;

    time_t      *t;
    ngx_str_t   *value, s;
    ngx_uint_t   i;

    if (rlcf->campaign.click_window != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    rlcf->campaign.click_window = 7 * 86400;
    rlcf->campaign.view_window = 86400;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "click=", 6) == 0) {
            t = &rlcf->campaign.click_window;
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

        } else if (ngx_strncmp(value[i].data, "view=", 5) == 0) {
            t = &rlcf->campaign.view_window;
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        *t = ngx_parse_time(&s, 1);
        if (*t == (time_t) NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid time \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


ngx_http_retarget_variant_name_t *
ngx_http_retarget_variant_find(ngx_http_retarget_main_conf_t *rmcf,
    u_char *name, size_t len)
{
    ngx_uint_t                         i;
    ngx_http_retarget_variant_name_t  *vn;

    if (rmcf->variant_names == NULL) {
        return NULL;
    }

    vn = rmcf->variant_names->elts;

    for (i = 0; i < rmcf->variant_names->nelts; i++) {
        if (vn[i].name.len == len
            && ngx_strncmp(vn[i].name.data, name, len) == 0)
        {
            return &vn[i];
        }
    }

    return NULL;
}


/* the name and its counter names, once for the whole configuration */

static ngx_http_retarget_variant_name_t *
ngx_http_retarget_variant_register(ngx_conf_t *cf, ngx_str_t *name)
{
    u_char                            *p;
    ngx_uint_t                         k;
    ngx_http_retarget_variant_name_t  *vn;
    ngx_http_retarget_main_conf_t     *rmcf;

    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_retarget_module);

    vn = ngx_http_retarget_variant_find(rmcf, name->data, name->len);
    if (vn != NULL) {
        return vn;
    }

    if (rmcf->variant_names == NULL) {
        rmcf->variant_names = ngx_array_create(cf->pool, 4,
                                     sizeof(ngx_http_retarget_variant_name_t));
        if (rmcf->variant_names == NULL) {
            return NULL;
        }
    }

    vn = ngx_array_push(rmcf->variant_names);
    if (vn == NULL) {
        return NULL;
    }

    vn->name = *name;

    for (k = 0; k < ngx_http_retarget_vc_count; k++) {
        vn->counters[k].len = ngx_http_retarget_vc_prefixes[k].len
                              + name->len;
        p = ngx_pnalloc(cf->pool, vn->counters[k].len);
        if (p == NULL) {
            return NULL;
        }

        vn->counters[k].data = p;
        p = ngx_cpymem(p, ngx_http_retarget_vc_prefixes[k].data,
                       ngx_http_retarget_vc_prefixes[k].len);
        ngx_memcpy(p, name->data, name->len);
    }

    return vn;
}


/* names that go into Redis hash fields and query strings as they are */

static ngx_int_t
ngx_http_retarget_variant_name_valid(ngx_str_t *name)
{
    u_char  *p, *last;

    if (name->len == 0 || name->len > NGX_HTTP_RETARGET_VARIANT_MAX) {
        return 0;
    }

    last = name->data + name->len;

    for (p = name->data; p < last; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
        {
            return 0;
        }
    }

    return 1;
}


/* retarget_currency CODE | off */

char *
ngx_http_retarget_currency_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_retarget_loc_conf_t *rlcf = conf;

    u_char                        *p;
    ngx_str_t                     *value;
    ngx_http_retarget_currency_t  *cur;

    if (rlcf->campaign.currency != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        rlcf->campaign.currency = NULL;
        return NGX_CONF_OK;
    }

    /* as ISO 4217 writes it: what the catalogue holds may be in any case */

    for (p = value[1].data; p < value[1].data + value[1].len; p++) {
        if (*p < 'A' || *p > 'Z') {
            break;
        }
    }

    if (value[1].len != 3 || p != value[1].data + value[1].len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid currency \"%V\": an ISO 4217 code is "
                           "three capital letters, such as \"EUR\", "
                           "\"USD\" or \"JPY\" (or \"off\")", &value[1]);
        return NGX_CONF_ERROR;
    }

    cur = ngx_palloc(cf->pool, sizeof(ngx_http_retarget_currency_t));
    if (cur == NULL) {
        return NGX_CONF_ERROR;
    }

    (void) ngx_http_retarget_currency_set(&value[1], cur);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                   "retarget currency: %*s, %d minor digits, symbol \"%V\"",
                   (size_t) 3, cur->code, (int) cur->digits, &cur->symbol);

    rlcf->campaign.currency = cur;

    return NGX_CONF_OK;
}
