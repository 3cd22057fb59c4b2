// Harbor & Co.: the few lines of script of the demo shop (demo/shop.py).
// Buttons call the shop's JSON API; the cart page is rendered by the
// server, so after a change there it is simply loaded again.
'use strict';

async function api(method, url, body) {
    const resp = await fetch(url, {
        method,
        credentials: 'same-origin',
        headers: body ? { 'Content-Type': 'application/json' } : {},
        body: body ? JSON.stringify(body) : undefined,
    });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok)
        throw new Error(data.error || `${resp.status}`);
    return data;
}

function showCount(cart) {
    for (const e of document.querySelectorAll('[data-cart-count]'))
        e.textContent = cart.item_count;
}

// The status line of the page: a text, and a link to the cart.
function say(el, text, link) {
    const box = el.closest('main').querySelector('[data-added]');
    if (!box)
        return;
    box.textContent = text;
    if (link) {
        const a = document.createElement('a');
        a.href = '/cart';
        a.textContent = 'View cart';
        box.append(' ', a);
    }
}

// "Add to cart" / "Add": the quantity field of the product page, else 1.
async function add(button) {
    const sku = button.dataset.add;
    const field = document.querySelector(`[data-qty-for="${sku}"]`);
    const qty = field ? parseInt(field.value, 10) || 1 : 1;
    button.disabled = true;
    try {
        const { item, cart } = await api('POST', '/api/cart/items', { sku, qty });
        showCount(cart);
        say(button, `Added ${qty} \u00d7 ${item.name}.`, true);
    } catch (e) {
        say(button, `Could not add: ${e.message}`);
    } finally {
        button.disabled = false;
    }
}

// The cart page: remove, one more, one less (at one: remove the line).
async function changeLine(button) {
    const row = button.closest('[data-line]');
    const id = encodeURIComponent(row.dataset.line);
    const qty = parseInt(row.querySelector('[data-qty]').textContent, 10);
    const step = parseInt(button.dataset.step || '0', 10);
    button.disabled = true;
    if (button.hasAttribute('data-remove') || qty + step < 1)
        await api('DELETE', `/api/cart/items/${id}`);
    else
        await api('PATCH', `/api/cart/items/${id}`, { qty: qty + step });
    location.reload();
}

async function checkout(form) {
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
        const email = form.querySelector('[name="email"]').value;
        const { order } = await api('POST', '/api/checkout', { email });
        location.assign(`/order/${encodeURIComponent(order.id)}`);
    } catch (e) {
        form.querySelector('[data-error]').textContent =
            `The order was not placed: ${e.message}`;
        button.disabled = false;
    }
}

document.addEventListener('click', (ev) => {
    const b = ev.target.closest('button');
    if (!b)
        return;
    if (b.dataset.add)
        add(b);
    else if (b.closest('[data-line]'))
        changeLine(b).catch(() => location.reload());
});

document.addEventListener('submit', (ev) => {
    if (ev.target.matches('[data-checkout]')) {
        ev.preventDefault();
        checkout(ev.target);
    }
});
