// Runs the dashboard's own script (from the page the admin listener serves)
// in Node, as a browser would run it at BASE/#token=TOKEN: the DOM is a
// stand-in that takes anything, fetch goes to the real listener. Prints
// {"page": STATUS, "calls": [{"path", "auth", "status"}]} after 2.5s.
//
//     node dashboard_token.js BASE_URL TOKEN
"use strict";
const vm = require("vm");

const [base, token] = process.argv.slice(2);

// anything: an element, a canvas context, a list... that takes every use.
function anything() {
  const f = function () {};
  return new Proxy(f, {
    get(_, k) {
      if (k === Symbol.toPrimitive) return () => 0;
      if (k === "tBodies") return [anything()];
      if (k === "childNodes") return [];
      if (k === "then") return undefined; // not a promise
      return anything();
    },
    set() { return true; },
    apply() { return anything(); },
  });
}

async function main() {
  const page = await fetch(base + "/"); // a browser never sends the fragment
  const html = await page.text();
  const out = { page: page.status, calls: [] };
  const m = html.match(/<script>([\s\S]*?)<\/script>/);
  if (page.status !== 200 || !m) {
    console.log(JSON.stringify(out));
    process.exit(0);
  }
  const ctx = {
    location: { hash: "#token=" + encodeURIComponent(token), href: base + "/#token=" + token },
    document: { getElementById: () => anything(), createElement: () => anything() },
    window: {},
    Node: class Node {},
    fetch: async (path, opts) => {
      const headers = (opts && opts.headers) || {};
      const call = { path, auth: headers.Authorization || "", status: 0 };
      out.calls.push(call);
      const r = await fetch(base + path, opts);
      call.status = r.status;
      return r;
    },
    URLSearchParams, TextDecoder, setTimeout, setInterval, console, Date, Math, JSON, Object, Promise, Error,
  };
  vm.createContext(ctx);
  vm.runInContext(m[1], ctx);
  setTimeout(() => { console.log(JSON.stringify(out)); process.exit(0); }, 2500);
}

main().catch((e) => { console.error(e); process.exit(1); });
