"""An MCP server on the official Python SDK's Streamable HTTP transport, with sessions and no
auth of its own: an upstream the gateway tests put the server in front of. It prints
{"port": N} once listening, then one JSON line per request it receives (method, headers, body):
that log is how a test proves what reached it."""

import asyncio
import json
import socket
import sys

import uvicorn
from mcp.server.mcpserver import Context, MCPServer

IDENTITY = ["x-mcp-subject", "x-mcp-issuer", "x-mcp-client-id", "x-mcp-scopes"]

server = MCPServer("py-upstream", log_level="WARNING")


@server.tool(description="Who the gateway says the caller is.")
async def whoami(ctx: Context) -> str:
    headers = ctx.headers or {}
    return json.dumps({name: headers[name] for name in IDENTITY if name in headers})


def logged(app):
    """Prints each request once its body is read, before the app answers it."""

    async def wrapper(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        headers = {}
        for name, value in scope["headers"]:
            name, value = name.decode("latin-1"), value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        body = bytearray()
        printed = False

        def log():
            nonlocal printed
            if not printed:
                printed = True
                line = {"method": scope["method"], "headers": headers, "body": body.decode("utf-8", "replace")}
                print(json.dumps(line), flush=True)

        if scope["method"] != "POST":
            log()

        async def receive_logged():
            message = await receive()
            if message["type"] == "http.request":
                body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    log()
            return message

        return await app(scope, receive_logged, send)

    return wrapper


async def main():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    app = logged(server.streamable_http_app(host="127.0.0.1"))
    config = uvicorn.Config(app, log_level="warning")
    print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])


if __name__ == "__main__":
    asyncio.run(main())
