"""The game's rules as pure Python: no I/O, no asyncio, no torch. Same inputs, same outputs."""
