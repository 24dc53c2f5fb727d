# web/ — the browser client (fanout.js) and the demo page.
# Installed to $(pkgdatadir)/web, fanoutd's default web_root. No build step:
# the files are served as they are.
webdir = $(pkgdatadir)/web
dist_web_DATA = web/index.html web/style.css web/app.js web/fanout.js
# Their tests: tests/unit-js/local.mk (the client module in node) and
# tests/browser/local.mk (real Chromium).
