"""Every HTTP route and the websocket endpoint, one module per audience: `public` (no login),
`admin` (the game's admin API), `learning` (the learning loop's admin API) and `websocket`
(`/ws`). All admin routes share the guard in `auth`, all errors the shape in `errors`.

Ids in paths are written `{id:row_id}`: at most 18 digits, so an id always fits a 64-bit row id
and one too large is no such route (404), never an OverflowError (500). The convertor is
registered here, before any route module builds its routes.
"""

from starlette.convertors import IntegerConvertor, register_url_convertor


class RowIdConvertor(IntegerConvertor):
    regex = "[0-9]{1,18}"


register_url_convertor("row_id", RowIdConvertor())
