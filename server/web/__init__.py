"""Every HTTP route and the websocket endpoint: public pages and API, admin API, learning API."""
