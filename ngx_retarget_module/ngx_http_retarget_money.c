
/*
 * Copyright (C) The ngx_retarget_module authors
 *
 * Money as the shop writes it.  Amounts are kept in cents everywhere
 * (ngx_http_retarget_store.h: at most two decimals are stored); a
 * currency gives them its symbol and its minor digits: "$35.00", a euro
 * sign and "12.00", a yen sign and "1200", "12.00 kr".
 * One format for every shop: a point before the minor digits, no
 * grouping of thousands.  A valid code the table does not know prints as
 * "12.00 XYZ", with the minor digits ISO 4217 gives it.  Codes come from
 * the configuration (checked at nginx -t) and from the catalogue, whose
 * values anyone with access to Redis may have written: a code is three
 * ASCII letters, in any case, or it is no currency at all.
 */


#include "ngx_http_retarget_money.h"


#define ngx_http_retarget_cur(code, digits, style, symbol)                   \
    { code, digits, NGX_HTTP_RETARGET_CUR_ ## style, ngx_string(symbol) }

/*
 * The symbols are those of CLDR's English locale where a symbol is
 * common and not ambiguous ("CA$", not "$"), in UTF-8: shops print their
 * product names in UTF-8 too.
 */
static ngx_http_retarget_currency_t  ngx_http_retarget_currencies[] = {
    ngx_http_retarget_cur("USD", 2, BEFORE, "$"),
    ngx_http_retarget_cur("EUR", 2, BEFORE, "\xe2\x82\xac"),          /* euro */
    ngx_http_retarget_cur("GBP", 2, BEFORE, "\xc2\xa3"),             /* pound */
    ngx_http_retarget_cur("JPY", 0, BEFORE, "\xc2\xa5"),               /* yen */
    ngx_http_retarget_cur("CHF", 2, BEFORE_SPACE, "CHF"),
    ngx_http_retarget_cur("CAD", 2, BEFORE, "CA$"),
    ngx_http_retarget_cur("AUD", 2, BEFORE, "A$"),
    ngx_http_retarget_cur("NZD", 2, BEFORE, "NZ$"),
    ngx_http_retarget_cur("SEK", 2, AFTER_SPACE, "kr"),
    ngx_http_retarget_cur("NOK", 2, AFTER_SPACE, "kr"),
    ngx_http_retarget_cur("DKK", 2, AFTER_SPACE, "kr."),
    ngx_http_retarget_cur("PLN", 2, AFTER_SPACE, "z\xc5\x82"),       /* zloty */
    ngx_http_retarget_cur("CZK", 2, AFTER_SPACE, "K\xc4\x8d"),      /* koruna */
    ngx_http_retarget_cur("HUF", 2, AFTER_SPACE, "Ft"),
    ngx_http_retarget_cur("RON", 2, AFTER_SPACE, "lei"),
    ngx_http_retarget_cur("BRL", 2, BEFORE, "R$"),
    ngx_http_retarget_cur("MXN", 2, BEFORE, "MX$"),
    ngx_http_retarget_cur("INR", 2, BEFORE, "\xe2\x82\xb9"),         /* rupee */
    ngx_http_retarget_cur("CNY", 2, BEFORE, "CN\xc2\xa5"),          /* CN yen */
    ngx_http_retarget_cur("HKD", 2, BEFORE, "HK$"),
    ngx_http_retarget_cur("TWD", 2, BEFORE, "NT$"),
    ngx_http_retarget_cur("SGD", 2, BEFORE, "S$"),
    ngx_http_retarget_cur("KRW", 0, BEFORE, "\xe2\x82\xa9"),           /* won */
    ngx_http_retarget_cur("ILS", 2, BEFORE, "\xe2\x82\xaa"),        /* shekel */
    ngx_http_retarget_cur("TRY", 2, BEFORE, "\xe2\x82\xba"),          /* lira */
    ngx_http_retarget_cur("THB", 2, BEFORE, "\xe0\xb8\xbf"),          /* baht */
    ngx_http_retarget_cur("PHP", 2, BEFORE, "\xe2\x82\xb1"),          /* peso */
    ngx_http_retarget_cur("ZAR", 2, BEFORE, "R"),
    ngx_http_retarget_cur("RUB", 2, AFTER_SPACE, "\xe2\x82\xbd"),    /* ruble */
    ngx_http_retarget_cur("UAH", 2, AFTER_SPACE, "\xe2\x82\xb4"),  /* hryvnia */
    ngx_http_retarget_cur("VND", 0, AFTER_SPACE, "\xe2\x82\xab"),     /* dong */

    /* no common symbol, minor digits other than two (ISO 4217) */

    ngx_http_retarget_cur("KWD", 3, AFTER_SPACE, ""),
    ngx_http_retarget_cur("BHD", 3, AFTER_SPACE, ""),
    ngx_http_retarget_cur("OMR", 3, AFTER_SPACE, ""),
    ngx_http_retarget_cur("JOD", 3, AFTER_SPACE, ""),
    ngx_http_retarget_cur("IQD", 3, AFTER_SPACE, ""),
    ngx_http_retarget_cur("LYD", 3, AFTER_SPACE, ""),
    ngx_http_retarget_cur("TND", 3, AFTER_SPACE, ""),
    ngx_http_retarget_cur("CLF", 4, AFTER_SPACE, ""),
    ngx_http_retarget_cur("UYW", 4, AFTER_SPACE, ""),
    ngx_http_retarget_cur("ISK", 0, AFTER_SPACE, ""),
    ngx_http_retarget_cur("CLP", 0, AFTER_SPACE, ""),
    ngx_http_retarget_cur("PYG", 0, AFTER_SPACE, ""),
    ngx_http_retarget_cur("UGX", 0, AFTER_SPACE, ""),
    ngx_http_retarget_cur("XAF", 0, AFTER_SPACE, ""),
    ngx_http_retarget_cur("XOF", 0, AFTER_SPACE, ""),
    ngx_http_retarget_cur("XPF", 0, AFTER_SPACE, ""),
    ngx_http_retarget_cur("BIF", 0, AFTER_SPACE, ""),
    ngx_http_retarget_cur("DJF", 0, AFTER_SPACE, ""),
    ngx_http_retarget_cur("GNF", 0, AFTER_SPACE, ""),
    ngx_http_retarget_cur("KMF", 0, AFTER_SPACE, ""),
    ngx_http_retarget_cur("RWF", 0, AFTER_SPACE, ""),
    ngx_http_retarget_cur("UYI", 0, AFTER_SPACE, ""),
    ngx_http_retarget_cur("VUV", 0, AFTER_SPACE, "")
};


/* U+00A0: the amount and its symbol never end up on two lines */
#define NGX_HTTP_RETARGET_NBSP  "\xc2\xa0"


/* three ASCII letters, in any case: NGX_OK, else NGX_DECLINED */

ngx_int_t
ngx_http_retarget_currency_code(ngx_str_t *code)
{
    ngx_uint_t  i;
    u_char      c;

    if (code->len != 3) {
        return NGX_DECLINED;
    }

    for (i = 0; i < 3; i++) {
        c = (u_char) (code->data[i] | 0x20);

        if (c < 'a' || c > 'z') {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/*
 * The currency of a code: from the table, or "12.00 XYZ" with two minor
 * digits.  NGX_DECLINED when the code is not one (cur is left alone).
 */

ngx_int_t
ngx_http_retarget_currency_set(ngx_str_t *code,
    ngx_http_retarget_currency_t *cur)
{
    u_char      up[3];
    ngx_uint_t  i;

    if (ngx_http_retarget_currency_code(code) != NGX_OK) {
        return NGX_DECLINED;
    }

    up[0] = ngx_toupper(code->data[0]);
    up[1] = ngx_toupper(code->data[1]);
    up[2] = ngx_toupper(code->data[2]);

    for (i = 0; i < sizeof(ngx_http_retarget_currencies)
                    / sizeof(ngx_http_retarget_currency_t); i++)
    {
        if (ngx_memcmp(ngx_http_retarget_currencies[i].code, up, 3) == 0) {
            *cur = ngx_http_retarget_currencies[i];
            return NGX_OK;
        }
    }

    ngx_memcpy(cur->code, up, 3);
    cur->digits = 2;
    cur->style = NGX_HTTP_RETARGET_CUR_AFTER_SPACE;
    ngx_str_null(&cur->symbol);

    return NGX_OK;
}


/*
 * The amount with the currency's minor digits and nothing else, "12.00",
 * "1200", "12.350": what a template prints beside a symbol of its own.
 * Without a currency, two decimals.  A currency without minor units
 * rounds half up ("1200.50" yen is 1201).
 */

u_char *
ngx_http_retarget_money_value(u_char *p, int64_t cents,
    ngx_http_retarget_currency_t *cur)
{
    if (cents < 0) {
        cents = 0;
    }

    switch (cur ? cur->digits : 2) {

    case 0:
        return ngx_sprintf(p, "%L", (cents + 50) / 100);

    case 3:
        return ngx_sprintf(p, "%L.%03L", cents / 100, cents % 100 * 10);

    case 4:
        return ngx_sprintf(p, "%L.%04L", cents / 100, cents % 100 * 100);

    default:
        return ngx_sprintf(p, "%L.%02L", cents / 100, cents % 100);
    }
}


/*
 * The amount as the shop shows it: "$35.00", "CHF 12.00", "12.00 kr"
 * (with no-break spaces), "12.00 XYZ"; without a currency the plain
 * number, "12.00".  At most NGX_HTTP_RETARGET_MONEY_LEN bytes.
 */

u_char *
ngx_http_retarget_money_format(u_char *p, int64_t cents,
    ngx_http_retarget_currency_t *cur)
{
    u_char  *symbol;
    size_t   len;

    if (cur == NULL) {
        return ngx_http_retarget_money_value(p, cents, NULL);
    }

    if (cur->symbol.len) {
        symbol = cur->symbol.data;
        len = cur->symbol.len;

    } else {
        symbol = cur->code;
        len = 3;
    }

    switch (cur->style) {

    case NGX_HTTP_RETARGET_CUR_BEFORE:
        p = ngx_cpymem(p, symbol, len);
        return ngx_http_retarget_money_value(p, cents, cur);

    case NGX_HTTP_RETARGET_CUR_BEFORE_SPACE:
        p = ngx_cpymem(p, symbol, len);
        p = ngx_cpymem(p, NGX_HTTP_RETARGET_NBSP,
                       sizeof(NGX_HTTP_RETARGET_NBSP) - 1);
        return ngx_http_retarget_money_value(p, cents, cur);

    default: /* NGX_HTTP_RETARGET_CUR_AFTER_SPACE */
        p = ngx_http_retarget_money_value(p, cents, cur);
        p = ngx_cpymem(p, NGX_HTTP_RETARGET_NBSP,
                       sizeof(NGX_HTTP_RETARGET_NBSP) - 1);
        return ngx_cpymem(p, symbol, len);
    }
}


/* both, in one allocation from the pool; "value" may be NULL */

ngx_int_t
ngx_http_retarget_money(ngx_pool_t *pool, int64_t cents,
    ngx_http_retarget_currency_t *cur, ngx_str_t *formatted,
    ngx_str_t *value)
{
    u_char  *p;

    p = ngx_pnalloc(pool, 2 * NGX_HTTP_RETARGET_MONEY_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    formatted->data = p;
    formatted->len = ngx_http_retarget_money_format(p, cents, cur) - p;

    if (value != NULL) {
        p += formatted->len;

        value->data = p;
        value->len = ngx_http_retarget_money_value(p, cents, cur) - p;
    }

    return NGX_OK;
}
