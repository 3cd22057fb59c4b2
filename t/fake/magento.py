#!/usr/bin/env python3
"""A fake Magento 2.4 shop (Luma theme) for the recipe test
t/111-recipe-magento.t: python3 t/fake/magento.py PORT.

It answers what Magento answers, with Magento's field names:

  GET  /SLUG.html                    product page: microdata (itemscope
                                     Product on <body>, itemprop name/sku,
                                     an Offer with price/priceCurrency),
                                     data-price-amount, og:/product: tags
  POST /checkout/cart/add/uenc/X/product/ID/   multipart: product, qty,
                                     form_key -> [] (AJAX add)
  POST /checkout/sidebar/removeItem/         item_id, form_key
  POST /checkout/sidebar/updateItemQty/      item_id, item_qty, form_key
                                     -> {"success": true, "error_message": ""}
  GET  /customer/section/load/?sections=cart,...   customer data: "cart"
                                     with items[] (item_id, product_id,
                                     product_sku, product_name, qty,
                                     product_price_value, product_image.src,
                                     product_url), subtotalAmount, ...
  GET  /checkout/                    the checkout page (window.checkoutConfig
                                     with the masked quote id)
  POST /rest/default/V1/guest-carts/MASKED/payment-information
                                     places the order, answers its id ("12")
  GET  /checkout/onepage/success/    once after an order, then a redirect
                                     to the cart (as Magento does)
  GET  anything else                 a shop page

The cart lives in memory per the shop's session cookie (PHPSESSID).
"""

import html
import json
import re
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SITE = "https://magento.example"
MEDIA = SITE + "/media/catalog/product/cache/3b2c/"

# id: (url key, sku, name, price as Magento stores it, image)
PRODUCTS = {
    1: ("joust-duffle-bag", "24-MB01", "Joust Duffle Bag", "34.0000",
        "m/b/mb01-blue-0.jpg"),
    4: ("wayfarer-messenger-bag", "24-MB05", "Wayfarer Messenger Bag",
        "45.0000", "m/b/mb05-black-0.jpg"),
    14: ("push-it-messenger-bag", "24-WB04", "Push It Messenger Bag",
         "45.0000", "w/b/wb04-blue-0.jpg"),
    44: ("affirm-water-bottle", "24-UG06", "Affirm Water Bottle", "7.0000",
         "u/g/ug06-lb-0.jpg"),
}
BY_KEY = {p[0]: pid for pid, p in PRODUCTS.items()}

LOCK = threading.Lock()
SESSIONS = {}       # PHPSESSID -> {"items": {item_id: [pid, qty]},
                    #               "masked": id, "last_order": id}
NEXT = {"item": 100, "order": 12}


def price_text(price):
    return "$%.2f" % float(price)


def number(price):
    """Magento's customer data gives product_price_value as a number."""
    f = float(price)
    return int(f) if f == int(f) else f


def session_state(sid):
    return SESSIONS.setdefault(sid, {"items": {}, "masked": None,
                                     "last_order": None})


def cart_section(st):
    items = []
    subtotal = 0.0
    count = 0
    for item_id, (pid, qty) in reversed(list(st["items"].items())):
        key, sku, name, price, image = PRODUCTS[pid]
        subtotal += float(price) * qty
        count += qty
        items.append({
            "product_type": "simple", "options": [], "qty": qty,
            "item_id": str(item_id),
            "configure_url": "%s/checkout/cart/configure/id/%d/product_id/%d/"
                             % (SITE, item_id, pid),
            "is_visible_in_site_visibility": True,
            "product_id": str(pid), "product_name": name,
            "product_sku": sku, "product_url": "%s/%s.html" % (SITE, key),
            "product_has_url": True,
            "product_price": '\n\n<span class="price-excluding-tax" data-'
                             'label="Excl. Tax">\n<span class="minicart-price">'
                             '\n<span class="price">%s</span></span>\n</span>\n'
                             % price_text(price),
            "product_price_value": number(price),
            "product_image": {"src": MEDIA + image, "alt": name,
                              "width": 75, "height": 75},
            "canApplyMsrp": False, "message": "",
        })
    return {"summary_count": count, "subtotalAmount": number(subtotal),
            "subtotal": '<span class="price">%s</span>' % price_text(subtotal),
            "possible_onepage_checkout": True, "items": items,
            "extra_actions": "", "isGuestCheckoutAllowed": True,
            "website_id": "1", "storeId": "1",
            "subtotal_incl_tax": '<span class="price">%s</span>'
                                 % price_text(subtotal),
            "subtotal_excl_tax": '<span class="price">%s</span>'
                                 % price_text(subtotal),
            "data_id": 1700000000}


def page(title, body, head="", body_attrs=""):
    return ('<!doctype html>\n<html lang="en"><head><meta charset="utf-8"/>'
            '<title>%s</title>%s</head>\n<body data-container="body" '
            'data-mage-init=\'{"loaderAjax": {}, "loader": { "icon": ""}}\' '
            'id="html-body"%s class="page-layout-1column">\n<div class="page-'
            'wrapper"><header class="page-header"><a class="logo" href="/">'
            'Luma</a><div data-block="minicart" class="minicart-wrapper"><a '
            'class="action showcart" href="/checkout/cart/">My Cart</a></div>'
            '</header><main id="maincontent" class="page-main">%s</main>'
            '<footer class="page-footer">Copyright</footer></div>\n'
            '<script type="text/x-magento-init">{"*": {"Magento_Customer/js/'
            'customer-data": {"sectionLoadUrl": "%s/customer/section/load/"}}}'
            '</script>\n</body>\n</html>\n'
            % (html.escape(title), head, body_attrs, body, SITE))


def product_page(pid):
    key, sku, name, price, image = PRODUCTS[pid]
    amount = "%g" % float(price)
    head = ('<meta property="og:type" content="product" /><meta property="og:'
            'title" content="%s" /><meta property="og:image" content="%s" />'
            '<meta property="og:url" content="%s/%s.html" /><meta property="'
            'product:price:amount" content="%s"/><meta property="product:price:'
            'currency" content="USD"/>'
            % (html.escape(name), MEDIA + image, SITE, key, amount))
    body = ('<div class="columns"><div class="column main"><div class="product-'
            'info-main"><div class="page-title-wrapper product"><h1 class="'
            'page-title"><span class="base" data-ui-id="page-title-wrapper" '
            'itemprop="name">%s</span></h1></div><div class="product-info-'
            'price"><div class="price-box price-final_price" data-role="'
            'priceBox" data-product-id="%d" data-price-box="product-id-%d">'
            '<span class="price-container price-final_price tax weee" '
            'itemprop="offers" itemscope itemtype="http://schema.org/Offer">'
            '<span id="product-price-%d" data-price-amount="%s" data-price-'
            'type="finalPrice" class="price-wrapper "><span class="price">%s'
            '</span></span><meta itemprop="price" content="%s" /><meta '
            'itemprop="priceCurrency" content="USD" /></span></div><div class'
            '="product-info-stock-sku"><div class="stock available" title="'
            'Availability"><span>In stock</span></div><div class="product '
            'attribute sku"><strong class="type">SKU</strong><div class="'
            'value" itemprop="sku">%s</div></div></div></div>'
            '<form data-product-sku="%s" action="%s/checkout/cart/add/uenc/'
            'aHR0cHM6Ly9tYWdlbnRvLmV4YW1wbGUv/product/%d/" method="post" id="'
            'product_addtocart_form"><input type="hidden" name="product" '
            'value="%d"><input type="number" name="qty" value="1"><button '
            'type="submit" title="Add to Cart" class="action primary tocart">'
            '<span>Add to Cart</span></button></form></div>'
            '<div class="product media"><img alt="main product photo" class="'
            'gallery-placeholder__image" src="%s" /></div></div></div>'
            % (html.escape(name), pid, pid, pid, amount, price_text(price),
               amount, sku, sku, SITE, pid, pid, MEDIA + image))
    return page(name, body, head,
                ' itemtype="http://schema.org/Product" itemscope="itemscope"')


def multipart(ctype, raw):
    """Fields of a multipart/form-data body (no files)."""
    m = re.search(r'boundary="?([^";]+)"?', ctype)
    if not m:
        return {}
    fields = {}
    for part in raw.split(b"--" + m.group(1).encode()):
        head, _, value = part.partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head)
        if name and b"filename=" not in head:
            fields[name.group(1).decode()] = value[:-2].decode() \
                if value.endswith(b"\r\n") else value.decode()
    return fields


class Shop(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def session(self):
        for part in self.headers.get("Cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "PHPSESSID" and value:
                return value, None
        value = secrets.token_hex(13)
        return value, ("PHPSESSID=%s; expires=Fri, 01-Jan-2038 00:00:00 GMT; "
                       "Max-Age=3600; path=/; HttpOnly; "
                       "SameSite=Lax" % value)

    def form(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        ctype = self.headers.get("Content-Type", "")
        if ctype.startswith("multipart/form-data"):
            return multipart(ctype, raw), raw
        if ctype.startswith("application/x-www-form-urlencoded"):
            return {k: v[0] for k, v in parse_qs(raw.decode()).items()}, raw
        return {}, raw

    def send(self, status, ctype, data, cookie=None, extra=()):
        if not isinstance(data, (str, bytes)):
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

    def json_reply(self, obj, cookie, status=200):
        self.send(status, "application/json", json.dumps(obj), cookie)

    def do_GET(self):
        url = urlsplit(self.path)
        sid, cookie = self.session()
        with LOCK:
            st = session_state(sid)
            if url.path == "/customer/section/load/":
                wanted = parse_qs(url.query).get("sections", [""])[0]
                wanted = wanted.split(",") if wanted else ["cart", "messages"]
                out = {}
                if "cart" in wanted:
                    out["cart"] = cart_section(st)
                if "messages" in wanted:
                    out["messages"] = {"messages": [], "data_id": 1700000000}
                if "directory-data" in wanted:
                    out["directory-data"] = {"data_id": 1700000000}
                return self.json_reply(out, cookie)
            m = re.fullmatch(r"/([a-z0-9-]+)\.html", url.path)
            if m and m.group(1) in BY_KEY:
                return self.send(200, "text/html; charset=UTF-8",
                                 product_page(BY_KEY[m.group(1)]), cookie)
            if url.path == "/checkout/":
                if not st["masked"]:
                    st["masked"] = secrets.token_urlsafe(24)
                conf = {"quoteData": {"entity_id": st["masked"]},
                        "storeCode": "default", "isCustomerLoggedIn": False}
                body = ('<div id="checkout" data-bind="scope:\'checkout\'" '
                        'class="checkout-container"></div><script>window.'
                        'checkoutConfig = %s;</script>' % json.dumps(conf))
                return self.send(200, "text/html; charset=UTF-8",
                                 page("Checkout", body), cookie)
            if url.path == "/checkout/onepage/success/":
                order = st["last_order"]
                if order is None:
                    return self.send(302, "text/html; charset=UTF-8", "",
                                     cookie,
                                     [("Location", SITE + "/checkout/cart/")])
                st["last_order"] = None
                body = ('<div class="checkout-success"><p>Your order # is: '
                        '<span>%09d</span>.</p><p>We\'ll email you an order '
                        'confirmation with details and tracking info.</p>'
                        '</div>' % order)
                return self.send(200, "text/html; charset=UTF-8",
                                 page("Success Page", body), cookie)
            return self.send(200, "text/html; charset=UTF-8",
                             page("Home Page", "<h1>Luma</h1>"), cookie)

    def do_POST(self):
        url = urlsplit(self.path)
        sid, cookie = self.session()
        form, raw = self.form()
        with LOCK:
            st = session_state(sid)
            items = st["items"]
            m = re.fullmatch(r"/checkout/cart/add/uenc/[^/]+/product/(\d+)/",
                             url.path)
            if m:
                pid = int(form.get("product", m.group(1)))
                qty = int(form.get("qty") or 1)
                if pid not in PRODUCTS or not form.get("form_key"):
                    return self.json_reply({"backUrl": SITE + "/"}, cookie)
                for item_id, line in items.items():
                    if line[0] == pid:
                        line[1] += qty
                        break
                else:
                    NEXT["item"] += 1
                    items[NEXT["item"]] = [pid, qty]
                return self.json_reply([], cookie)
            if url.path in ("/checkout/sidebar/removeItem/",
                            "/checkout/sidebar/updateItemQty/"):
                try:
                    item_id = int(form.get("item_id", ""))
                except ValueError:
                    item_id = None
                if item_id not in items or not form.get("form_key"):
                    return self.json_reply({"success": False,
                                            "error_message": "We can't find "
                                            "the quote item."}, cookie)
                if url.path.endswith("removeItem/"):
                    del items[item_id]
                else:
                    items[item_id][1] = int(float(form.get("item_qty", "1")))
                return self.json_reply({"success": True, "error_message": ""},
                                       cookie)
            m = re.fullmatch(r"/rest/default/V1/guest-carts/([^/]+)/"
                             r"payment-information", url.path)
            if m:
                if m.group(1) != st["masked"] or not items:
                    return self.json_reply({"message": "No such entity with "
                                            "%fieldName = %fieldValue",
                                            "parameters": {
                                                "fieldName": "cartId",
                                                "fieldValue": m.group(1)}},
                                           None, 404)
                order = NEXT["order"]
                NEXT["order"] += 1
                st["items"] = {}
                st["masked"] = None
                st["last_order"] = order
                return self.json_reply(str(order), cookie)
            return self.send(404, "text/html; charset=UTF-8",
                             page("404 Not Found", "<h1>Whoops</h1>"), cookie)


if __name__ == "__main__":
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Shop).serve_forever()
