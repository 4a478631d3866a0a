"""The ``simulated`` provider kind: an adapter talking to the built-in simulator.

Unless the config names a ``base_url`` (a simulator run elsewhere with `ridethrough
simulate`), the gateway starts its own simulator on a loopback port, so even the simulated
path crosses a real socket and the real wire format.
"""

from __future__ import annotations

from ridethrough.config import ProviderConfig
from ridethrough.providers.anthropic import AnthropicProvider
from ridethrough.providers.openai import OpenAIProvider


class _SimulatorOwner:
    """Mixin: start and stop an in-process simulator when no base_url is configured."""

    name: str
    cfg: ProviderConfig
    base_url: str

    def _init_sim(self) -> None:
        self.server = None
        if not self.cfg.base_url:
            from ridethrough.simulator import SimulatorServer

            self.server = SimulatorServer(self.name, token_delay_s=self.cfg.token_delay_s,
                                          api_key=getattr(self, "api_key", None))

    async def _start_sim(self) -> str | None:
        if self.server is None:
            return None
        await self.server.start()
        return str(self.server.base_url)

    async def _stop_sim(self) -> None:
        if self.server is not None:
            await self.server.stop()


class SimulatedAnthropicProvider(_SimulatorOwner, AnthropicProvider):
    kind = "simulated"

    def __init__(self, name: str, cfg: ProviderConfig) -> None:
        super().__init__(name, cfg, cfg.base_url or "http://127.0.0.1:0")
        self._init_sim()

    async def start(self) -> None:
        url = await self._start_sim()
        if url:
            self.base_url = url
        await super().start()

    async def close(self) -> None:
        await super().close()
        await self._stop_sim()


class SimulatedOpenAIProvider(_SimulatorOwner, OpenAIProvider):
    kind = "simulated"

    def __init__(self, name: str, cfg: ProviderConfig) -> None:
        super().__init__(name, cfg, cfg.base_url or "http://127.0.0.1:0/v1")
        self._init_sim()

    async def start(self) -> None:
        url = await self._start_sim()
        if url:
            self.base_url = url + "/v1"
        await super().start()

    async def close(self) -> None:
        await super().close()
        await self._stop_sim()
