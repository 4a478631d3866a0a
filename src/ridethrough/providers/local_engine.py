"""The local model's synchronous core: chat template, tokens, one cancellable generation.

llama-cpp-python's ``create_chat_completion`` cannot be interrupted (it takes no stopping
criterion) and reports no usage when streaming, yet the gateway must stop a generation the
moment its client goes away and must report usage either way. So the loop over
``Llama.generate`` is ours: it asks ``should_stop`` before every next token, counts the
tokens it samples, applies stop sequences itself (holding back text that may be the start
of one) and never splits a UTF-8 character between two pieces.

Everything here runs on the provider's single worker thread, because a llama.cpp context is
not thread-safe. Tokenizing and template rendering only read the vocabulary and may run on
any thread.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from ridethrough.errors import ErrorClass, UpstreamError

# Used only when a GGUF carries no chat template of its own.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# OpenAI roles the chat templates of small open models do not know.
_ROLE_MAP = {"developer": "system", "tool": "user", "function": "user"}


@dataclass(frozen=True, slots=True)
class SamplingParams:
    max_tokens: int | None = None        # None: until the context window is full
    temperature: float = 0.2
    top_p: float = 0.95
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(slots=True)
class Generation:
    """What one generation produced (filled in as it runs, read when it ends)."""

    prompt_tokens: int
    completion_tokens: int = 0
    finish_reason: str | None = None     # "stop" | "length" | "cancelled"
    pieces: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def normalize_messages(messages: Sequence[Any]) -> list[dict[str, str]]:
    """OpenAI messages → ``{role, content: str}`` as every chat template expects.

    Text parts are joined; other parts (images, audio) never reach a provider that declares
    it cannot take them, so they are skipped here rather than failing the template.
    """
    out: list[dict[str, str]] = []
    for m in messages:
        if not isinstance(m, dict):
            raise UpstreamError(ErrorClass.CLIENT, "messages must be objects", upstream_status=400)
        role = str(m.get("role") or "user")
        content = m.get("content")
        if isinstance(content, list):
            text = "\n".join(str(p.get("text", "")) for p in content
                             if isinstance(p, dict) and p.get("type") in ("text", "input_text"))
        elif content is None:
            text = ""
        else:
            text = str(content)
        out.append({"role": _ROLE_MAP.get(role, role), "content": text})
    return out


def held_back(text: bytes, stops: Sequence[bytes]) -> int:
    """How many trailing bytes might be the beginning of a stop sequence."""
    longest = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), longest, -1):
            if text.endswith(s[:n]):
                longest = n
                break
    return longest


def utf8_boundary(text: bytes, end: int) -> int:
    """The largest position <= ``end`` that does not cut a UTF-8 character in two."""
    i = end
    # Walk back over continuation bytes to the lead byte of the last character.
    while i > 0 and end - i < 4 and (text[i - 1] & 0xC0) == 0x80:
        i -= 1
    if i == 0:
        return end
    lead = text[i - 1]
    need = 1 if lead < 0x80 else 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 \
        else 4 if lead >> 3 == 0b11110 else 1
    return end if end - (i - 1) >= need else i - 1


class LocalEngine:
    """One loaded ``llama_cpp.Llama`` and how to render, count and generate with it."""

    def __init__(self, llm: Any) -> None:
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.llm = llm
        self.n_ctx: int = int(llm.n_ctx())
        self._llama_cpp = llama_cpp
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
        eos_id, bos_id = llm.token_eos(), llm.token_bos()
        detok = llm._model.token_get_text
        eos = detok(eos_id) if eos_id != -1 else ""
        bos = detok(bos_id) if bos_id != -1 else ""
        metadata = getattr(llm, "metadata", {}) or {}
        # The template shipped inside the GGUF, exactly as llama-cpp-python itself uses it.
        self.template_source = "gguf" if "tokenizer.chat_template" in metadata else "chatml"
        template = metadata.get("tokenizer.chat_template", CHATML_TEMPLATE)
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self._template_stops = tuple(s for s in (eos,) if s)

    # -- prompt and tokens (any thread) -----------------------------------------------------

    def render(self, messages: Sequence[Any], *, continue_final: bool = False) -> tuple[str, bool]:
        """The prompt text and whether the template already added the special tokens.

        ``continue_final`` (vLLM's ``continue_final_message``): the trailing assistant message
        is a prefill (a continuation's partial answer). The prompt is the conversation before
        it, opened for the assistant, then its text — as llama.cpp's server renders one — so
        generation picks up where that text stops. Without it, a trailing assistant turn is
        history, answered afresh (OpenAI's meaning)."""
        normalized = normalize_messages(messages)
        prefill = ""
        if continue_final and len(normalized) > 1 and normalized[-1]["role"] == "assistant":
            prefill = normalized.pop()["content"]
        try:
            # llama-cpp-python types messages as TypedDicts; plain {role, content} is what
            # they are at run time.
            result = self._formatter(messages=cast(Any, normalized))
        except UpstreamError:
            raise
        except Exception as e:
            raise UpstreamError(ErrorClass.CLIENT, f"the chat template rejected the messages: {e}",
                                upstream_status=400) from None
        return result.prompt + prefill, bool(result.added_special)

    def prompt_tokens(self, messages: Sequence[Any], *, continue_final: bool = False) -> list[int]:
        prompt, added_special = self.render(messages, continue_final=continue_final)
        tokens: list[int] = self.llm.tokenize(prompt.encode("utf-8"), add_bos=not added_special,
                                              special=True)
        return tokens

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    # -- generation (the worker thread only) ------------------------------------------------

    def generate(self, prompt: list[int], params: SamplingParams, *,
                 should_stop: Callable[[], bool], on_text: Callable[[str], None]) -> Generation:
        """Generate until end of turn, a stop sequence, ``max_tokens`` or ``should_stop()``.

        ``on_text`` receives each new piece of text as soon as it is safe to show.
        """
        llm = self.llm
        result = Generation(prompt_tokens=len(prompt))
        room = self.n_ctx - len(prompt)
        if room <= 0:
            raise UpstreamError(
                ErrorClass.TOO_LARGE,
                f"the prompt has {len(prompt)} tokens; the local context window is {self.n_ctx}")
        limit = min(params.max_tokens or room, room)
        stops = tuple(s.encode("utf-8") for s in params.stop + self._template_stops if s)
        if params.seed is not None:
            # A seed promises the same text for the same request. llama.cpp reuses the KV cache
            # of a prompt's common prefix with the previous one, and a prefix evaluated in a
            # different batch shape gives slightly different logits on some kernels (AVX2: seen
            # in `make kernel-check`), which sampling turns into other words. Evaluate afresh.
            llm.reset()
        llm.set_seed(params.seed if params.seed is not None else random.randrange(2**32))

        completion: list[int] = []
        text = b""
        sent = 0

        def emit(upto: int) -> None:
            nonlocal sent
            if upto > sent:
                piece = text[sent:upto].decode("utf-8", errors="replace")
                sent = upto
                result.pieces.append(piece)
                on_text(piece)

        if should_stop():
            result.finish_reason = "cancelled"
            return result
        tokens = llm.generate(prompt, top_k=40, top_p=params.top_p, min_p=0.05,
                              temp=params.temperature, repeat_penalty=1.0)
        try:
            for token in tokens:
                if should_stop():
                    result.finish_reason = "cancelled"
                    break
                if self._llama_cpp.llama_vocab_is_eog(self._vocab, token):
                    result.finish_reason = "stop"
                    break
                completion.append(token)
                result.completion_tokens = len(completion)
                text = llm.detokenize(completion)
                cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
                if cut >= 0:
                    emit(utf8_boundary(text, cut))
                    result.finish_reason = "stop"
                    break
                emit(utf8_boundary(text, len(text) - held_back(text, stops)))
                if len(completion) >= limit:
                    result.finish_reason = "length"
                    break
        finally:
            tokens.close()
        if result.finish_reason is None:  # the generator ran dry: treat as end of turn
            result.finish_reason = "stop"
        if result.finish_reason != "cancelled" and sent < len(text) and \
                not any(text.find(s) >= 0 for s in stops):
            emit(len(text))  # what was held back as a possible stop prefix was not one
        return result
