// Generates src/tokenizer/unicode_tables.cpp: the Unicode data the tokenizer needs, taken from the
// JavaScript engine that runs the reference tokenizer (so our tables match its Unicode version):
//  - per code point flags: general categories L N P S M Z C, White_Space (= the \s the
//    tokenizers' regexes use), and \w (Alphabetic, M, Nd, Pc, Join_Control; for single_word);
//  - NFC: full canonical decompositions, canonical combining class (as an order-preserving rank,
//    inferred from the engine's own reordering), and the primary composition pairs.
// The NFC tables are checked here against String.prototype.normalize on every code point and on
// random strings before anything is written.
//
// Usage (from the repository root): node src/model/gen_unicode_tables.mjs > src/tokenizer/unicode_tables.cpp
import process from 'node:process';

const MAX = 0x110000;
const isSurrogate = (c) => c >= 0xd800 && c <= 0xdfff;
const ch = (c) => String.fromCodePoint(c);
const cps = (s) => Array.from(s, (x) => x.codePointAt(0));

// ---- category flags -------------------------------------------------------------------------
const FLAGS = [
  ['kL', /^\p{L}$/u], ['kN', /^\p{N}$/u], ['kP', /^\p{P}$/u], ['kS', /^\p{S}$/u],
  ['kM', /^\p{M}$/u], ['kZ', /^\p{Z}$/u], ['kC', /^\p{C}$/u],
  ['kSpace', /^\p{White_Space}$/u],
  ['kWord', /^[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]$/u],
];
const flagOf = (c) => {
  if (isSurrogate(c)) return 1 << 6;  // Cs
  const s = ch(c);
  let f = 0;
  FLAGS.forEach(([, re], i) => { if (re.test(s)) f |= 1 << i; });
  return f;
};
const ranges = [];
{
  let start = 0, cur = flagOf(0);
  for (let c = 1; c < MAX; ++c) {
    const f = flagOf(c);
    if (f !== cur) { ranges.push([start, c - 1, cur]); start = c; cur = f; }
  }
  ranges.push([start, MAX - 1, cur]);
}

// ---- NFC ------------------------------------------------------------------------------------
const SBase = 0xac00, SCount = 11172;
const isHangulSyllable = (c) => c >= SBase && c < SBase + SCount;

// Full canonical decompositions (Hangul syllables are algorithmic and left out).
const decomp = new Map();
for (let c = 0; c < MAX; ++c) {
  if (isSurrogate(c) || isHangulSyllable(c)) continue;
  const d = ch(c).normalize('NFD');
  if (d !== ch(c)) decomp.set(c, cps(d));
}

// Non-starters among the characters that do not decompose. "a" x U+0301 composes to U+00E1
// unless x is a starter (blocks) or has class 230 (blocked); "a" x U+0328 catches class 230.
const nonStarters = [];
for (let c = 0; c < MAX; ++c) {
  if (isSurrogate(c) || decomp.has(c) || isHangulSyllable(c)) continue;
  const x = ch(c);
  const t1 = ('a' + x + '\u0301').normalize('NFC').startsWith('\u00e1');
  const t2 = ('a' + x + '\u0328').normalize('NFC').startsWith('\u0105');
  if (t1 || t2) nonStarters.push(c);
}
// Order them by the engine's canonical reordering: x > y when "a" x y reorders to "a" y x.
const gt = (x, y) => ('a' + ch(x) + ch(y)).normalize('NFD') === 'a' + ch(y) + ch(x);
const cmp = (x, y) => (gt(x, y) ? 1 : gt(y, x) ? -1 : 0);
nonStarters.sort((x, y) => cmp(x, y) || x - y);
const ccc = new Map();
{
  let rank = 1;
  for (let i = 0; i < nonStarters.length; ++i) {
    if (i > 0 && cmp(nonStarters[i - 1], nonStarters[i]) !== 0) ++rank;
    ccc.set(nonStarters[i], rank);
  }
  if (rank > 255) throw new Error(`too many combining classes: ${rank}`);
}
const cccOf = (c) => ccc.get(c) ?? 0;

// Primary composites: decompose, and NFC gives them back. Find the pair (A, b) with
// NFC(A b) = P where b is one character of the decomposition and A composes the rest.
const comp = new Map();  // key first*2^21+second -> composite
for (const [p, d] of decomp) {
  if (ch(p).normalize('NFC') !== ch(p) || d.length < 2) continue;
  let found = false;
  for (let i = d.length - 1; i >= 1 && !found; --i) {
    const rest = d.slice(0, i).concat(d.slice(i + 1));
    const a = cps(String.fromCodePoint(...rest).normalize('NFC'));
    if (a.length !== 1) continue;
    if ((ch(a[0]) + ch(d[i])).normalize('NFC') === ch(p)) {
      comp.set(a[0] * 0x200000 + d[i], p);
      found = true;
    }
  }
  if (!found) throw new Error(`no composition pair for U+${p.toString(16)}`);
}

// The same algorithm the C++ side implements (unicode.cpp), used to check the tables.
const LBase = 0x1100, VBase = 0x1161, TBase = 0x11a7, LCount = 19, VCount = 21, TCount = 28;
const NCount = VCount * TCount;
function nfc(s) {
  const out = [];
  for (const c of cps(s)) {
    if (isHangulSyllable(c)) {
      const si = c - SBase;
      out.push(LBase + Math.floor(si / NCount), VBase + Math.floor((si % NCount) / TCount));
      if (si % TCount) out.push(TBase + (si % TCount));
    } else if (decomp.has(c)) out.push(...decomp.get(c));
    else out.push(c);
  }
  for (let i = 1; i < out.length; ++i) {  // canonical ordering (insertion sort, stable)
    const cc = cccOf(out[i]);
    if (cc === 0) continue;
    let j = i;
    while (j > 0 && cccOf(out[j - 1]) > cc) { [out[j - 1], out[j]] = [out[j], out[j - 1]]; --j; }
  }
  const res = [];
  let starter = -1, lastCcc = -1;
  for (const c of out) {
    const cc = cccOf(c);
    if (starter >= 0 && (lastCcc < cc || (lastCcc === 0 && res.length - 1 === starter))) {
      const s = res[starter];
      let composed = -1;
      if (s >= LBase && s < LBase + LCount && c >= VBase && c < VBase + VCount) {
        composed = SBase + ((s - LBase) * VCount + (c - VBase)) * TCount;
      } else if (isHangulSyllable(s) && (s - SBase) % TCount === 0 && c > TBase && c < TBase + TCount) {
        composed = s + (c - TBase);
      } else {
        composed = comp.get(s * 0x200000 + c) ?? -1;
      }
      if (composed >= 0 && res.length - 1 === starter) { res[starter] = composed; lastCcc = 0; continue; }
      if (composed >= 0 && lastCcc < cc) { res[starter] = composed; continue; }
    }
    if (cc === 0) { starter = res.length; lastCcc = 0; } else lastCcc = cc;
    res.push(c);
  }
  return String.fromCodePoint(...res);
}

let bad = 0;
for (let c = 0; c < MAX; ++c) {
  if (isSurrogate(c)) continue;
  if (nfc(ch(c)) !== ch(c).normalize('NFC') && bad++ < 10) console.error(`mismatch U+${c.toString(16)}`);
}
// Random strings from the characters that take part in normalization.
const pool = new Set([0x61, 0x65, 0x41, 0x20, 0x1100, 0x1161, 0x11a8, 0xac00, 0xac01]);
for (const [p, d] of decomp) { pool.add(p); d.forEach((x) => pool.add(x)); }
nonStarters.forEach((x) => pool.add(x));
const poolArr = [...pool];
let seed = 12345;
const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
for (let k = 0; k < 300000; ++k) {
  const n = 1 + rnd(6);
  const s = String.fromCodePoint(...Array.from({ length: n }, () => poolArr[rnd(poolArr.length)]));
  if (nfc(s) !== s.normalize('NFC') && bad++ < 20) console.error(`mismatch ${JSON.stringify(s)}`);
}
if (bad) throw new Error(`${bad} NFC mismatches`);

// ---- output ---------------------------------------------------------------------------------
const hex = (c) => '0x' + c.toString(16).toUpperCase();
const lines = [];
lines.push('// Generated by src/model/gen_unicode_tables.mjs from the Unicode data of the JavaScript');
lines.push(`// engine that runs the reference tokenizer (Unicode ${process.versions.unicode}). Do not edit.`);
lines.push('// clang-format off');
lines.push('#include "tokenizer/unicode_tables.h"');
lines.push('');
lines.push('namespace moa::unicode::tables {');
lines.push('');
lines.push(`const char kUnicodeVersion[] = "${process.versions.unicode}";`);
lines.push('');
lines.push(`const CategoryRange kCategoryRanges[] = {`);
for (const [a, b, f] of ranges) lines.push(`{${hex(a)},${hex(b)},${f}},`);
lines.push('};');
lines.push(`const size_t kNumCategoryRanges = ${ranges.length};`);
lines.push('');
const cccList = [...ccc.entries()].sort((x, y) => x[0] - y[0]);
lines.push('const CccEntry kCcc[] = {');
for (let i = 0; i < cccList.length; i += 8) {
  lines.push(cccList.slice(i, i + 8).map(([c, r]) => `{${hex(c)},${r}}`).join(',') + ',');
}
lines.push('};');
lines.push(`const size_t kNumCcc = ${cccList.length};`);
lines.push('');
const decList = [...decomp.entries()].sort((x, y) => x[0] - y[0]);
const flat = [];
const entries = [];
for (const [c, d] of decList) { entries.push([c, flat.length, d.length]); flat.push(...d); }
lines.push('const char32_t kDecompData[] = {');
for (let i = 0; i < flat.length; i += 12) lines.push(flat.slice(i, i + 12).map(hex).join(',') + ',');
lines.push('};');
lines.push('const DecompEntry kDecomp[] = {');
for (let i = 0; i < entries.length; i += 6) {
  lines.push(entries.slice(i, i + 6).map(([c, o, n]) => `{${hex(c)},${o},${n}}`).join(',') + ',');
}
lines.push('};');
lines.push(`const size_t kNumDecomp = ${entries.length};`);
lines.push('');
const compList = [...comp.entries()].map(([k, p]) => [Math.floor(k / 0x200000), k % 0x200000, p])
  .sort((x, y) => x[0] - y[0] || x[1] - y[1]);
lines.push('const CompEntry kComp[] = {');
for (let i = 0; i < compList.length; i += 6) {
  lines.push(compList.slice(i, i + 6).map(([a, b, p]) => `{${hex(a)},${hex(b)},${hex(p)}}`).join(',') + ',');
}
lines.push('};');
lines.push(`const size_t kNumComp = ${compList.length};`);
lines.push('');
lines.push('}  // namespace moa::unicode::tables');
process.stdout.write(lines.join('\n') + '\n');
console.error(`ranges ${ranges.length}, ccc ${cccList.length} (classes ${Math.max(...ccc.values())}), ` +
  `decompositions ${entries.length}, compositions ${compList.length}`);
