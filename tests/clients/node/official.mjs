// The official TypeScript SDKs (@anthropic-ai/sdk, openai) against the gateway.
// Usage: node official.mjs <anthropic|openai> <json|stream|tools> <gateway url> <route> <prompt>
// Prints one JSON object: {text, stop, deltas, tool_called} — what the application would see.
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";

const [sdk, mode, url, route, prompt] = process.argv.slice(2);
const WEATHER = "get_weather";
const out = { sdk, mode };

if (sdk === "anthropic") {
  const client = new Anthropic({ baseURL: url, apiKey: "client-key", maxRetries: 0 });
  const user = { role: "user", content: prompt };
  if (mode === "json") {
    const msg = await client.messages.create({ model: route, max_tokens: 300, messages: [user] });
    out.text = msg.content.filter((b) => b.type === "text").map((b) => b.text).join("");
    out.stop = msg.stop_reason;
  } else if (mode === "stream") {
    const stream = client.messages.stream({ model: route, max_tokens: 300, messages: [user] });
    out.deltas = 0;
    stream.on("text", () => { out.deltas += 1; });
    const msg = await stream.finalMessage();
    out.text = msg.content.filter((b) => b.type === "text").map((b) => b.text).join("");
    out.stop = msg.stop_reason;
  } else {
    const tools = [{ name: WEATHER, description: "Weather in a city",
      input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } }];
    const first = await client.messages.create({ model: route, max_tokens: 300, tools, messages: [user] });
    const call = first.content.find((b) => b.type === "tool_use");
    out.tool_called = call ? call.name : null;
    const second = await client.messages.create({ model: route, max_tokens: 300, tools, messages: [
      user, { role: "assistant", content: first.content },
      { role: "user", content: [{ type: "tool_result", tool_use_id: call.id, content: "sunny, 21 C" }] }] });
    out.text = second.content.filter((b) => b.type === "text").map((b) => b.text).join("");
    out.stop = second.stop_reason;
  }
} else {
  const client = new OpenAI({ baseURL: url + "/v1", apiKey: "client-key", maxRetries: 0 });
  const user = { role: "user", content: prompt };
  if (mode === "json") {
    const c = await client.chat.completions.create({ model: route, messages: [user] });
    out.text = c.choices[0].message.content;
    out.stop = c.choices[0].finish_reason;
  } else if (mode === "stream") {
    const stream = client.chat.completions.stream({ model: route, messages: [user] });
    out.deltas = 0;
    stream.on("content", () => { out.deltas += 1; });
    const c = await stream.finalChatCompletion();
    out.text = c.choices[0].message.content;
    out.stop = c.choices[0].finish_reason;
  } else {
    const tools = [{ type: "function", function: { name: WEATHER, description: "Weather in a city",
      parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } } }];
    const first = await client.chat.completions.create({ model: route, tools, messages: [user] });
    const call = first.choices[0].message.tool_calls?.[0];
    out.tool_called = call ? call.function.name : null;
    const second = await client.chat.completions.create({ model: route, tools, messages: [
      user, first.choices[0].message,
      { role: "tool", tool_call_id: call.id, content: "sunny, 21 C" }] });
    out.text = second.choices[0].message.content;
    out.stop = second.choices[0].finish_reason;
  }
}
console.log(JSON.stringify(out));
