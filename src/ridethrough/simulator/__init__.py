"""The provider simulator: fake Anthropic and OpenAI APIs with switchable faults.

Used by the demo, the tests, drills and benchmarks. It speaks the real wire formats
over a real loopback socket, so the official SDKs and the gateway talk to it exactly as
they would to the providers, and it fails the way the providers fail (see
``shared/outages.md``): HTTP errors, refused ports, resets, hangs, in-band stream errors,
truncated streams, malformed JSON and slow tokens.
"""

from .faults import Fault, FaultKind
from .server import DEFAULT_MODELS, SimulatorServer, run_simulator
from .stats import RecordedRequest, SimStats

__all__ = [
    "DEFAULT_MODELS",
    "Fault",
    "FaultKind",
    "RecordedRequest",
    "SimStats",
    "SimulatorServer",
    "run_simulator",
]
