"""Every HTTP route and the websocket endpoint, one module per audience: `public` (no login),
`admin` (the game's admin API), `learning` (the learning loop's admin API) and `websocket`
(`/ws`). All admin routes share the guard in `auth`, all errors the shape in `errors`."""
