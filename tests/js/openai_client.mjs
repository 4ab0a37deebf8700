// Drives a running `moa serve` with the official openai npm client (tests/test_serve.cpp starts the
// server and runs this with its port). Exits 0 when every check holds; prints one line per failure.
//   node tests/js/openai_client.mjs PORT
import OpenAI from "openai";

const port = process.argv[2];
const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "none", maxRetries: 0 });
let failures = 0;
function check(cond, what) {
  if (!cond) {
    failures++;
    console.log(`FAIL: ${what}`);
  }
}

const models = await client.models.list();
check(models.data.length === 1 && models.data[0].id === "moa-tiny", `models.list: ${JSON.stringify(models.data)}`);

const prompt = "The pass key is 4821. Remember it. The pass key is";
const whole = await client.completions.create({ model: "moa-tiny", prompt, max_tokens: 12, temperature: 0 });
check(whole.object === "text_completion", "completion object");
check(whole.usage.completion_tokens === 12, `completion usage ${JSON.stringify(whole.usage)}`);
let streamed = "";
for await (const chunk of await client.completions.create({ model: "moa-tiny", prompt, max_tokens: 12, temperature: 0, stream: true })) {
  streamed += chunk.choices[0]?.text ?? "";
}
check(streamed === whole.choices[0].text, `completion stream ${JSON.stringify(streamed)} vs ${JSON.stringify(whole.choices[0].text)}`);

const messages = [{ role: "system", content: "Be brief." }, { role: "user", content: "What is the pass key?" }];
const chat = await client.chat.completions.create({ model: "moa-tiny", messages, max_tokens: 16, temperature: 0 });
check(chat.choices[0].message.role === "assistant", "chat role");
let chatStreamed = "", finish = null, usage = null;
const stream = await client.chat.completions.create({
  model: "moa-tiny", messages, max_tokens: 16, temperature: 0, stream: true, stream_options: { include_usage: true },
});
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  if (!chunk.choices.length) continue;
  chatStreamed += chunk.choices[0].delta?.content ?? "";
  finish = chunk.choices[0].finish_reason ?? finish;
}
check(chatStreamed === chat.choices[0].message.content, `chat stream ${JSON.stringify(chatStreamed)} vs ${JSON.stringify(chat.choices[0].message.content)}`);
check(finish === chat.choices[0].finish_reason, `chat finish ${finish}`);
check(usage && usage.completion_tokens === chat.usage.completion_tokens, `stream usage ${JSON.stringify(usage)}`);
// The same conversation again: its prompt is served from the slot's checkpoint.
const again = await client.chat.completions.create({ model: "moa-tiny", messages, max_tokens: 16, temperature: 0 });
check(again.usage.prompt_tokens_details.cached_tokens === again.usage.prompt_tokens,
  `cached_tokens ${JSON.stringify(again.usage)}`);

// A bad request surfaces as the client's BadRequestError with our message.
try {
  await client.completions.create({ model: "moa-tiny", prompt, max_tokens: -3 });
  check(false, "max_tokens -3 accepted");
} catch (e) {
  check(e instanceof OpenAI.BadRequestError && e.status === 400 && /max_tokens/.test(e.message), `bad request: ${e}`);
}
process.exit(failures ? 1 : 0);
