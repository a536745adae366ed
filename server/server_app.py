"""The coordinator's Flower ServerApp: a relay, nothing more.

The coordinator service (or `silobridge job run` on the coordinator host) starts one
Flower run of this app and drives every job through it (`server/relay/`): this process
attaches to the service on loopback and performs the service's Grid calls on the
SuperLink. It is given no coordinator home - no key, no central caps, no audit log - so a
ServerApp cannot sign, settle or log anything.
"""

from __future__ import annotations

import logging

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from server.relay.relay_serve import serve_relay
from server.run_config import decode_relay_config
from vocab.errors import SilobridgeError

__all__ = ["app"]

log = logging.getLogger(__name__)
app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Relay the service's Grid calls until it lets this run go."""
    try:
        relay = decode_relay_config(dict(context.run_config))
    except SilobridgeError as err:
        log.error("%s", err)
        raise SystemExit(2) from None
    serve_relay(grid, relay.address, relay.token, grid.run.run_id)
