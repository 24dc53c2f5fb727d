# web/ — the browser client and demo page.
