"""The planner asks the local model's own tokenizer whether a prompt fits its window."""

from __future__ import annotations

import anthropic
import pytest

from ridethrough.config import parse_config
from ridethrough.harness import GatewayThread

pytestmark = pytest.mark.local_model


@pytest.fixture(scope="module")
def gw():
    cfg = parse_config({
        "server": {"access_log": False},
        "providers": {"local": {"kind": "local", "n_ctx": 2048}},
        "routes": {"r": {"targets": [{"provider": "local", "model": "smollm2"}],
                         "cache": {"mode": "off"}, "static_answer": "Back soon."}},
    })
    with GatewayThread(cfg) as g:
        yield g


def ask(g, content):
    ac = anthropic.Anthropic(base_url=g.url, api_key="x", max_retries=0, timeout=120)
    return ac.messages.with_raw_response.create(model="r", max_tokens=8,
                                                messages=[{"role": "user", "content": content}])


def test_prompt_larger_than_the_window_skips_the_local_model(gw):
    # The route's only target cannot carry it, so the client hears why (a 4xx), not a
    # static "outage" answer.
    with pytest.raises(anthropic.BadRequestError) as ei:
        ask(gw, "lorem ipsum dolor sit amet " * 800)  # several thousand tokens
    assert "local/smollm2 capability:context_window(2048)" in str(ei.value)


def test_prompt_the_estimate_rejects_but_the_tokenizer_accepts_is_served(gw):
    # ~6,100 characters of plain words: the 3-chars-per-token estimate says ~2,000 tokens
    # (over the 2,048 window with the output), the model's tokenizer counts far fewer.
    text = "the cat sat on the mat and " * 225
    assert len(text) / 3 + 8 > 2048 - 256
    raw = ask(gw, text + "Where did the cat sit?")
    assert raw.headers["x-ridethrough-target"] == "local/smollm2"
    assert raw.headers["x-ridethrough-degraded"] == "local-model"


def test_images_skip_the_local_text_model(gw):
    with pytest.raises(anthropic.BadRequestError) as ei:
        ask(gw, [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                               "data": "iVBORw0KGgo="}},
                 {"type": "text", "text": "what is this?"}])
    assert "local/smollm2 capability:images" in str(ei.value)
