"""No API keys, no config: the embedded default still answers (local model, cache in front)."""

from __future__ import annotations

import anthropic
import openai
import pytest

from ridethrough.config import default_config
from ridethrough.harness import GatewayThread

pytestmark = pytest.mark.local_model


def test_embedded_default_answers_with_the_local_model_and_caches():
    cfg = default_config({}, local_model=True)
    with GatewayThread(cfg) as g:
        oc = openai.OpenAI(base_url=g.url + "/v1", api_key="x", max_retries=0, timeout=120)
        q = [{"role": "user", "content": "Name a colour."}]
        first = oc.chat.completions.with_raw_response.create(model="local", messages=q, max_tokens=12)
        assert first.headers["x-ridethrough-degraded"] == "local-model"
        answer = first.parse().choices[0].message.content
        assert answer
        g.flush_cache()  # the store has landed
        ac = anthropic.Anthropic(base_url=g.url, api_key="x", max_retries=0, timeout=120)
        again = ac.messages.with_raw_response.create(model="local", messages=q, max_tokens=12)
        assert again.headers["x-ridethrough-cache"] == "hit"  # the cache answered, not the model
        assert again.parse().content[0].text == answer
