"""HTTP and WebSocket routes: parse, ask the access module, call one service, shape the answer."""
