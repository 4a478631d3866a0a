"""llama.cpp's own answer to a prompt, for differential tests of the local model.

A 135M model's greedy text depends on the processor's float kernels (AVX2, AVX-512, AMX give
different words for the same GGUF and prompt), so no test may compare the local model's output
with a fixed string. Instead a test asks this reference — a second ``llama_cpp.Llama`` loaded
from the same GGUF, the GGUF's chat template rendered by llama-cpp-python's own
``Jinja2ChatFormatter``, and llama-cpp-python's own ``create_completion`` loop — and asserts
that the gateway returned exactly the same text and token counts on this machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ridethrough.providers.local_model import find_gguf, load_llama

# The sampler settings ridethrough's local engine uses (providers/local_engine.py).
ENGINE_SAMPLING = {"top_k": 40, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.0}


@dataclass(frozen=True)
class ReferenceAnswer:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str          # OpenAI's words: "stop" | "length"


class LlamaReference:
    def __init__(self, n_ctx: int = 2048) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        path = find_gguf()
        assert path is not None, "the SmolLM2 GGUF is not installed"
        self.llm = load_llama(path, n_ctx)
        detok = self.llm._model.token_get_text
        self.formatter = Jinja2ChatFormatter(
            template=self.llm.metadata["tokenizer.chat_template"],
            eos_token=detok(self.llm.token_eos()), bos_token=detok(self.llm.token_bos()))

    def answer(self, messages: list[dict[str, Any]], *, max_tokens: int,
               stop: list[str] | None = None, temperature: float = 0.0,
               seed: int | None = None, prefill: str = "") -> ReferenceAnswer:
        """``prefill``: the assistant's answer so far, continued — appended to the prompt
        after the template opens the assistant's turn, as llama.cpp's server does."""
        rendered = self.formatter(messages=messages)
        self.llm.reset()  # evaluate the prompt afresh, not from an earlier prompt's cache
        out = self.llm.create_completion(
            rendered.prompt + prefill, max_tokens=max_tokens, temperature=temperature, seed=seed,
            stop=list(stop or []), **ENGINE_SAMPLING)
        choice, usage = out["choices"][0], out["usage"]
        return ReferenceAnswer(text=choice["text"], prompt_tokens=usage["prompt_tokens"],
                               completion_tokens=usage["completion_tokens"],
                               finish_reason=choice["finish_reason"])

    def close(self) -> None:
        self.llm.close()
