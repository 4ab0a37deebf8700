// Load generator for an OpenAI-compatible server (moa serve, llama-server): C concurrent clients,
// each sending R streamed completions of a fixed prompt, greedy, max_tokens N, ignoring EOS where
// the server allows it. Reports generated tokens per second over the whole run, time to first
// token (median and p90), errors, and the server's RSS when a pid is given. No dependencies
// (Node's fetch).
//   node bench/serve_load.mjs --port 8080 --clients 16 --requests 4 --max-tokens 64 \
//        --prompt-file prompt.txt [--pid PID] [--seconds S: run until S seconds instead of R]
import { readFileSync } from "node:fs";

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith("--")) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
const port = args.port ?? "8080";
const clients = Number(args.clients ?? 1);
const requests = Number(args.requests ?? 4);
const maxTokens = Number(args["max-tokens"] ?? 64);
const seconds = args.seconds ? Number(args.seconds) : 0;
const prompt = args["prompt-file"] ? readFileSync(args["prompt-file"], "utf8") : "The pass key is 4821. Remember it.";
const url = `http://127.0.0.1:${port}/v1/completions`;

function rssMiB(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
    return s ? Number(s[1]) / 1024 : NaN;
  } catch { return NaN; }
}

let tokens = 0, errors = 0, done = 0, firstError = null;
const fail = (what) => { errors++; firstError ??= what; };
const ttft = [];
const rss = [];
async function one() {
  const t0 = performance.now();
  let first = 0;
  try {
    const r = await fetch(url, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0, stream: true,
                             stream_options: { include_usage: true }, ignore_eos: true }),
    });
    if (r.status !== 200) { fail(`HTTP ${r.status}: ${(await r.text()).slice(0, 200)}`); return; }
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    // Tokens: the usage chunk when the server sends one, else one per text chunk (llama-server
    // streams one token per chunk).
    let buf = "", usage = -1, chunks = 0;
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const ev = buf.slice(0, i); buf = buf.slice(i + 2);
        if (!ev.startsWith("data: ") || ev === "data: [DONE]") continue;
        const j = JSON.parse(ev.slice(6));
        if (j.error) { fail(JSON.stringify(j.error).slice(0, 200)); continue; }
        if (j.usage) usage = j.usage.completion_tokens;
        if (j.choices?.length && j.choices[0].text) {
          chunks++;
          if (!first) first = performance.now();
        }
      }
    }
    tokens += usage >= 0 ? usage : chunks;
    ttft.push((first || performance.now()) - t0);
    done++;
  } catch (e) { fail(String(e.cause ?? e).slice(0, 200)); }
}

const start = performance.now();
const deadline = start + seconds * 1000;
let sampler = null;
if (args.pid) {
  rss.push(rssMiB(args.pid));
  sampler = setInterval(() => rss.push(rssMiB(args.pid)), 200);
}
await Promise.all(Array.from({ length: clients }, async () => {
  for (let k = 0; seconds ? performance.now() < deadline : k < requests; ++k) await one();
}));
const wall = (performance.now() - start) / 1000;
if (sampler) {
  clearInterval(sampler);
  rss.push(rssMiB(args.pid));
}
ttft.sort((a, b) => a - b);
const q = (p) => ttft.length ? ttft[Math.min(ttft.length - 1, Math.floor(p * ttft.length))] : NaN;
console.log(JSON.stringify({
  clients, requests: done, errors, wall_s: +wall.toFixed(2), generated_tokens: tokens,
  tok_per_s: +(tokens / wall).toFixed(1), ttft_ms_p50: +q(0.5).toFixed(1), ttft_ms_p90: +q(0.9).toFixed(1),
  rss_mib_first: rss.length ? +rss[0].toFixed(1) : null, rss_mib_last: rss.length ? +rss[rss.length - 1].toFixed(1) : null,
  rss_mib_max: rss.length ? +Math.max(...rss).toFixed(1) : null, first_error: firstError,
}));
