#!/usr/bin/env python3
"""A fake WooCommerce shop (classic AJAX and the Store API) for the recipe
test t/110-recipe-woocommerce.t: python3 t/fake/woocommerce.py PORT.

It answers what a real WooCommerce 9 answers, with the field names and
shapes of the real thing (the parts a proxy can see):

  GET  /product/SLUG/               product page, JSON-LD in the footer
                                    (@graph, offers[0].priceSpecification[])
  GET  /wp-json/wc/store/v1/cart    the cart (Store API CartSchema)
  POST /wp-json/wc/store/v1/cart/add-item     {"id", "quantity"}
  POST /wp-json/wc/store/v1/cart/remove-item  {"key"}
  POST /wp-json/wc/store/v1/cart/update-item  {"key", "quantity"}
                                    each answers the whole cart
  POST /wp-json/wc/store/v1/batch   {"requests": [{"path", "method",
                                    "body"}]} -> 207 {"responses":
                                    [{"status", "headers", "body"}]}
  POST /wp-json/wc/store/v1/checkout  the order: order_id, status,
                                    order_key, ... payment_result; no total
  GET  /checkout/order-received/ID/?key=KEY   the thank-you page (HTML)
  GET  /cart/?remove_item=KEY&_wpnonce=N      the classic cart page's remove
                                    link: 302 to the cart (a bad nonce: the
                                    cart page, nothing removed)
  POST /product/SLUG/               the single product form (multipart):
                                    add-to-cart=ID, quantity -> the page
  POST /?wc-ajax=add_to_cart        form product_id, quantity, product_sku
                                    -> {"fragments", "cart_hash"}
  POST /?wc-ajax=remove_from_cart   form cart_item_key -> the same
  GET  anything else                a shop page

The cart lives in memory, per the shop's own session cookie
(wp_woocommerce_session_<hash>), set on the first cart request.  Line keys
are WooCommerce's: md5 of the product id (WC_Cart::generate_cart_id).
"""

import hashlib
import html
import json
import re
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SITE = "https://shop.example"
NONCE = "0a1b2c3d4e"
COOKIE = "wp_woocommerce_session_4f1b2c"

# id: (slug, sku, name, price in cents, image)
PRODUCTS = {
    12: ("hoodie-with-logo", "woo-hoodie-logo", "Hoodie with Logo", 4500,
         "/wp-content/uploads/2024/01/hoodie-with-logo-2.jpg"),
    13: ("beanie", "woo-beanie", "Beanie", 1800,
         "/wp-content/uploads/2024/01/beanie-2.jpg"),
    14: ("salt-pepper-bowl", "woo-bowl-salt+pepper", "Salt + Pepper Bowl",
         1250, "/wp-content/uploads/2024/01/bowl.jpg"),
    15: ("cap", "woo-cap", "Cap", 1600,
         "/wp-content/uploads/2024/01/cap-2.jpg"),
}
BY_SLUG = {p[0]: pid for pid, p in PRODUCTS.items()}

LOCK = threading.Lock()
CARTS = {}          # session -> {key: [product id, qty]} (insertion order)
ORDERS = {}         # order id -> {key, total, session}
NEXT_ORDER = [101]


def line_key(pid):
    return hashlib.md5(str(pid).encode()).hexdigest()


def money(cents):
    return "%d.%02d" % (cents // 100, cents % 100)


def cart_json(cart):
    items = []
    total = 0
    count = 0
    for key, (pid, qty) in cart.items():
        slug, sku, name, cents, image = PRODUCTS[pid]
        total += cents * qty
        count += qty
        prices = {"price": str(cents), "regular_price": str(cents),
                  "sale_price": str(cents), "price_range": None,
                  "currency_code": "USD", "currency_symbol": "$",
                  "currency_minor_unit": 2,
                  "currency_decimal_separator": ".",
                  "currency_thousand_separator": ",",
                  "currency_prefix": "$", "currency_suffix": "",
                  "raw_prices": {"precision": 6,
                                 "price": str(cents * 10000),
                                 "regular_price": str(cents * 10000),
                                 "sale_price": str(cents * 10000)}}
        items.append({
            "key": key, "id": pid, "type": "simple", "quantity": qty,
            "quantity_limits": {"minimum": 1, "maximum": 9999,
                                "multiple_of": 1, "editable": True},
            "name": name, "short_description": "", "description": "",
            "sku": sku, "low_stock_remaining": None,
            "backorders_allowed": False, "show_backorder_badge": False,
            "sold_individually": False,
            "permalink": "%s/product/%s/" % (SITE, slug),
            "images": [{"id": pid + 100, "src": SITE + image,
                        "thumbnail": SITE + image.replace(".jpg",
                                                          "-324x324.jpg"),
                        "srcset": "", "sizes": "", "name": slug,
                        "alt": ""}],
            "variation": [], "item_data": [], "prices": prices,
            "totals": {"line_subtotal": str(cents * qty),
                       "line_subtotal_tax": "0",
                       "line_total": str(cents * qty), "line_total_tax": "0",
                       "currency_code": "USD", "currency_minor_unit": 2},
            "catalog_visibility": "visible", "extensions": {},
        })
    totals = {"total_items": str(total), "total_items_tax": "0",
              "total_fees": "0", "total_fees_tax": "0",
              "total_discount": "0", "total_discount_tax": "0",
              "total_shipping": "0", "total_shipping_tax": "0",
              "total_price": str(total), "total_tax": "0", "tax_lines": [],
              "currency_code": "USD", "currency_symbol": "$",
              "currency_minor_unit": 2, "currency_decimal_separator": ".",
              "currency_thousand_separator": ",", "currency_prefix": "$",
              "currency_suffix": ""}
    return {"items": items, "coupons": [], "fees": [], "totals": totals,
            "shipping_address": {}, "billing_address": {},
            "needs_payment": total > 0, "needs_shipping": True,
            "payment_requirements": ["products"],
            "has_calculated_shipping": False, "shipping_rates": [],
            "items_count": count, "items_weight": 0, "cross_sells": [],
            "errors": [], "payment_methods": ["cod"], "extensions": {}}


def error(code, message, status):
    return status, {"code": code, "message": message,
                    "data": {"status": status}}


def store_route(session, method, path, body):
    """One Store API route: (status, JSON) as WooCommerce answers it."""
    cart = CARTS.setdefault(session, {})
    if path == "/wc/store/v1/cart" and method == "GET":
        return 200, cart_json(cart)
    if method != "POST":
        return error("rest_no_route", "No route was found", 404)
    if path == "/wc/store/v1/cart/add-item":
        pid = int(body.get("id", 0))
        qty = int(body.get("quantity", 1))
        if pid not in PRODUCTS:
            return error("woocommerce_rest_cart_invalid_product",
                         "This product cannot be added to the cart.", 400)
        add_line(cart, pid, qty)
        return 201, cart_json(cart)
    if path == "/wc/store/v1/cart/remove-item":
        if cart.pop(body.get("key", ""), None) is None:
            return error("woocommerce_rest_cart_invalid_key",
                         "Cart item no longer exists or is invalid.", 409)
        return 200, cart_json(cart)
    if path == "/wc/store/v1/cart/update-item":
        key = body.get("key", "")
        if key not in cart:
            return error("woocommerce_rest_cart_invalid_key",
                         "Cart item no longer exists or is invalid.", 409)
        cart[key][1] = int(body.get("quantity", 1))
        return 200, cart_json(cart)
    if path == "/wc/store/v1/checkout":
        if not cart:
            return error("woocommerce_rest_cart_empty",
                         "Cannot create order from empty cart.", 400)
        oid = NEXT_ORDER[0]
        NEXT_ORDER[0] += 1
        okey = "wc_order_" + secrets.token_hex(6)
        total = sum(PRODUCTS[p][3] * q for p, q in cart.values())
        ORDERS[oid] = {"key": okey, "total": total, "session": session}
        CARTS[session] = {}
        billing = body.get("billing_address", {})
        return 200, {
            "order_id": oid, "status": "processing", "order_key": okey,
            "order_number": str(oid), "customer_note": "", "customer_id": 0,
            "billing_address": billing,
            "shipping_address": body.get("shipping_address", billing),
            "payment_method": body.get("payment_method", "cod"),
            "payment_result": {
                "payment_status": "success", "payment_details": [],
                "redirect_url": "%s/checkout/order-received/%d/?key=%s"
                                % (SITE, oid, okey)},
            "additional_fields": {}, "extensions": {}}
    return error("rest_no_route", "No route was found", 404)


def product_page(pid):
    slug, sku, name, cents, image = PRODUCTS[pid]
    url = "%s/product/%s/" % (SITE, slug)
    ld = {"@context": "https://schema.org/", "@graph": [
        {"@type": "BreadcrumbList", "itemListElement": [
            {"@type": "ListItem", "position": 1,
             "item": {"name": "Shop", "@id": SITE + "/shop/"}},
            {"@type": "ListItem", "position": 2,
             "item": {"name": name, "@id": url}}]},
        {"@type": "Product", "@id": url + "#product", "name": name,
         "url": url, "description": "A fine " + name.lower() + ".",
         "image": SITE + image, "sku": sku,
         "offers": [{"@type": "Offer",
                     "priceSpecification": [{
                         "@type": "UnitPriceSpecification",
                         "price": money(cents), "priceCurrency": "USD",
                         "valueAddedTaxIncluded": False,
                         "validThrough": "2027-12-31"}],
                     "priceValidUntil": "2027-12-31",
                     "availability": "http://schema.org/InStock",
                     "url": url,
                     "seller": {"@type": "Organization", "name": "Shop",
                                "url": SITE}}]}]}
    body = ('<div class="product type-product post-%d"><h1 class="product_title '
            'entry-title">%s</h1><p class="price"><span class="woocommerce-'
            'Price-amount amount"><bdi><span class="woocommerce-Price-'
            'currencySymbol">&#36;</span>%s</bdi></span></p>'
            '<form class="cart" method="post" enctype="multipart/form-data">'
            '<input type="number" name="quantity" value="1">'
            '<button type="submit" name="add-to-cart" value="%d" '
            'class="single_add_to_cart_button button alt">Add to cart'
            '</button></form></div>'
            % (pid, html.escape(name), money(cents), pid))
    footer = ('<script type="application/ld+json">%s</script>\n'
              % json.dumps(ld, separators=(",", ":")).replace("/", "\\/"))
    return page(name, body, footer)


def page(title, body, footer=""):
    return ('<!DOCTYPE html>\n<html lang="en-US"><head><meta charset="UTF-8">'
            '<title>%s &#8211; Shop</title></head>\n<body class="woocommerce">'
            '<header><a href="/">Shop</a> <a href="/cart/">Cart</a></header>'
            '\n<main>%s</main>\n<footer>Powered by WooCommerce</footer>\n%s'
            '</body>\n</html>\n' % (html.escape(title), body, footer))


def fragments(cart):
    rows = "".join(
        '<li class="woocommerce-mini-cart-item mini_cart_item"><a href="%s/'
        'cart/?remove_item=%s&#038;_wpnonce=0a1b2c3d4e" class="remove '
        'remove_from_cart_button" data-product_id="%d" data-cart_item_key='
        '"%s" data-product_sku="%s">&times;</a>%s <span class="quantity">%d '
        '&times; $%s</span></li>'
        % (SITE, key, pid, key, PRODUCTS[pid][1], html.escape(PRODUCTS[pid][2]),
           qty, money(PRODUCTS[pid][3]))
        for key, (pid, qty) in cart.items())
    mini = ('<div class="widget_shopping_cart_content"><ul class="woocommerce-'
            'mini-cart cart_list product_list_widget">%s</ul></div>' % rows)
    cart_hash = hashlib.md5(json.dumps(sorted(cart.items())).encode()).hexdigest()
    return {"fragments": {"div.widget_shopping_cart_content": mini},
            "cart_hash": cart_hash}


def form_fields(ctype, raw):
    """The fields of a url-encoded or multipart/form-data body."""
    m = re.search(r'boundary="?([^";]+)"?', ctype)
    if not ctype.startswith("multipart/form-data") or not m:
        return {k: v[0] for k, v in parse_qs(raw.decode()).items()}
    fields = {}
    for part in raw.split(b"--" + m.group(1).encode()):
        head, _, value = part.partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head)
        if name and b"filename=" not in head:
            fields[name.group(1).decode()] = value[:-2].decode() \
                if value.endswith(b"\r\n") else value.decode()
    return fields


def add_line(cart, pid, qty):
    key = line_key(pid)
    if key in cart:
        cart[key][1] += qty
    else:
        cart[key] = [pid, qty]


class Shop(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def session(self):
        for part in self.headers.get("Cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and value:
                return value, None
        value = secrets.token_hex(16)
        return value, "%s=%s; path=/; HttpOnly" % (COOKIE, value)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, status, ctype, data, cookie=None, extra=()):
        if isinstance(data, (dict, list)):
            data = json.dumps(data)
        data = data.encode() if isinstance(data, str) else data
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if cookie:
            self.send_header("Set-Cookie", cookie)
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def json_reply(self, status, obj, cookie):
        self.send(status, "application/json; charset=UTF-8", obj, cookie,
                  [("X-WC-Store-API-Nonce", "0a1b2c3d4e")])

    def do_GET(self):
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        session, cookie = self.session()
        with LOCK:
            if url.path.startswith("/wp-json/wc/store/v1/"):
                status, obj = store_route(session, "GET",
                                          url.path[len("/wp-json"):], {})
                return self.json_reply(status, obj, cookie)
            if len(parts) == 2 and parts[0] == "product" \
                    and parts[1] in BY_SLUG:
                return self.send(200, "text/html; charset=UTF-8",
                                 product_page(BY_SLUG[parts[1]]), cookie)
            if parts == ["cart"] and "remove_item" in url.query:
                # the classic cart page's remove link; a bad nonce is
                # refused, the page shown again
                q = parse_qs(url.query)
                if q.get("_wpnonce", [""])[0] == NONCE:
                    CARTS.setdefault(session, {}).pop(
                        q.get("remove_item", [""])[0], None)
                    return self.send(302, "text/html; charset=UTF-8", "",
                                     cookie, [("Location", SITE + "/cart/")])
            if parts[:2] == ["checkout", "order-received"] and len(parts) == 3:
                order = ORDERS.get(int(parts[2])) if parts[2].isdigit() else None
                key = parse_qs(url.query).get("key", [""])[0]
                if not order or order["key"] != key:
                    return self.send(404, "text/html; charset=UTF-8",
                                     page("Not found", "<p>Not found</p>"))
                body = ('<p class="woocommerce-thankyou-order-received">Thank '
                        'you. Your order has been received.</p><ul class="'
                        'woocommerce-order-overview order_details"><li class="'
                        'woocommerce-order-overview__order order">Order number:'
                        ' <strong>%s</strong></li><li class="woocommerce-order-'
                        'overview__total total">Total: <strong><span class="'
                        'woocommerce-Price-amount amount"><bdi><span class="'
                        'woocommerce-Price-currencySymbol">&#36;</span>%s</bdi>'
                        '</span></strong></li></ul>'
                        % (parts[2], money(order["total"])))
                return self.send(200, "text/html; charset=UTF-8",
                                 page("Order received", body), cookie)
            return self.send(200, "text/html; charset=UTF-8",
                             page("Shop", "<h1>Shop</h1><p>All products</p>"),
                             cookie)

    def do_POST(self):
        url = urlsplit(self.path)
        raw = self.body()
        session, cookie = self.session()
        with LOCK:
            if url.path == "/wp-json/wc/store/v1/batch":
                reqs = json.loads(raw or b"{}").get("requests", [])
                out = []
                for rq in reqs:
                    status, obj = store_route(session,
                                              rq.get("method", "POST"),
                                              rq.get("path", ""),
                                              rq.get("body") or {})
                    out.append({"body": obj, "status": status, "headers": {}})
                return self.json_reply(207, {"responses": out}, cookie)
            if url.path.startswith("/wp-json/wc/store/v1/"):
                body = json.loads(raw or b"{}")
                status, obj = store_route(session, "POST",
                                          url.path[len("/wp-json"):], body)
                return self.json_reply(status, obj, cookie)
            action = parse_qs(url.query).get("wc-ajax", [""])[0]
            form = form_fields(self.headers.get("Content-Type", ""), raw)
            cart = CARTS.setdefault(session, {})
            parts = [p for p in url.path.split("/") if p]
            if len(parts) == 2 and parts[0] == "product" \
                    and parts[1] in BY_SLUG and not action:
                # the single product form: add-to-cart=ID, quantity=N; the
                # answer is the product page again (no redirect to the cart)
                pid = int(form.get("add-to-cart") or 0)
                if pid in PRODUCTS:
                    add_line(cart, pid, int(form.get("quantity") or 1))
                return self.send(200, "text/html; charset=UTF-8",
                                 product_page(BY_SLUG[parts[1]]), cookie)
            if action == "add_to_cart":
                pid = int(form.get("product_id", 0))
                if pid not in PRODUCTS:
                    return self.json_reply(200, {"error": True,
                                                 "product_url": SITE}, cookie)
                add_line(cart, pid, int(form.get("quantity", 1)))
                return self.json_reply(200, fragments(cart), cookie)
            if action == "remove_from_cart":
                cart.pop(form.get("cart_item_key", ""), None)
                return self.json_reply(200, fragments(cart), cookie)
            return self.send(404, "text/html; charset=UTF-8",
                             page("Not found", "<p>Not found</p>"), cookie)


if __name__ == "__main__":
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Shop).serve_forever()
