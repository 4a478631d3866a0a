// The Vercel AI SDK (`ai` with @ai-sdk/anthropic or @ai-sdk/openai) against the gateway.
// Usage: node vercel-ai.mjs <anthropic|openai> <json|stream|tools> <gateway url> <route> <prompt>
import { generateText, streamText, tool, stepCountIs } from "ai";
import { createAnthropic } from "@ai-sdk/anthropic";
import { createOpenAI } from "@ai-sdk/openai";
import { z } from "zod";

const [format, mode, url, route, prompt] = process.argv.slice(2);
// @ai-sdk/openai's default model is the Responses API; Chat Completions is `.chat(...)`.
const model = format === "anthropic"
  ? createAnthropic({ baseURL: url + "/v1", apiKey: "client-key" })(route)
  : createOpenAI({ baseURL: url + "/v1", apiKey: "client-key" }).chat(route);
const out = { format, mode };
const common = { model, prompt, maxRetries: 0, maxOutputTokens: 300 };

if (mode === "json") {
  const r = await generateText(common);
  out.text = r.text;
  out.stop = r.finishReason;
} else if (mode === "stream") {
  const r = streamText(common);
  out.deltas = 0;
  let text = "";
  for await (const piece of r.textStream) { out.deltas += 1; text += piece; }
  out.text = text;
  out.stop = await r.finishReason;
} else {
  let called = null;
  const r = await generateText({
    ...common,
    tools: { get_weather: tool({ description: "Weather in a city",
      inputSchema: z.object({ city: z.string() }),
      execute: async () => { called = "get_weather"; return "sunny, 21 C"; } }) },
    stopWhen: stepCountIs(3),
  });
  out.tool_called = called;
  out.text = r.text;
  out.stop = r.finishReason;
}
console.log(JSON.stringify(out));
