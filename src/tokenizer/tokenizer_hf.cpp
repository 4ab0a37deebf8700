// The tokenizer.json tokenizer: parsing of the pipeline components we support, and encode/decode.
// Semantics follow the reference (Hugging Face tokenizers as run by transformers.js); where the
// Rust library and the JS port differ on something our tokenizers never hit (single_word, which
// the JS port ignores), we follow the Rust library.
#include <algorithm>

#include "moa/core/error.h"
#include "tokenizer/tokenizer_internal.h"
#include "moa/tokenizer/unicode.h"

namespace moa::tok {

using nlohmann::json;

namespace {

// Field access that reports the file and the field's path.
struct Ctx {
  const std::string& file;

  const json* find(const json& o, const char* key) const {
    auto it = o.find(key);
    return (it == o.end() || it->is_null()) ? nullptr : &*it;
  }
  bool get_bool(const json& o, const char* key, bool def, const std::string& path) const {
    const json* v = find(o, key);
    if (!v) return def;
    if (!v->is_boolean()) {
      input_error("{}: field '{}.{}' is {}, expected true or false", file, path, key, v->dump());
    }
    return v->get<bool>();
  }
  int get_int(const json& o, const char* key, int def, const std::string& path) const {
    const json* v = find(o, key);
    if (!v) return def;
    if (!v->is_number_integer() || v->get<int64_t>() < INT32_MIN || v->get<int64_t>() > INT32_MAX) {
      input_error("{}: field '{}.{}' is {}, expected an integer", file, path, key, v->dump());
    }
    return v->get<int>();
  }
  std::string get_string(const json& o, const char* key, const std::string& path,
                         std::optional<std::string> def = std::nullopt) const {
    const json* v = find(o, key);
    if (!v) {
      if (def) return *def;
      input_error("{}: field '{}.{}' is missing, expected a string", file, path, key);
    }
    if (!v->is_string()) {
      input_error("{}: field '{}.{}' is {}, expected a string", file, path, key, v->dump());
    }
    return v->get<std::string>();
  }
  const json& get_object(const json& o, const char* key, const std::string& path) const {
    const json* v = find(o, key);
    if (!v || !v->is_object()) {
      input_error("{}: field '{}{}{}' is {}, expected an object", file, path,
                  path.empty() ? "" : ".", key, v ? v->dump() : std::string("missing"));
    }
    return *v;
  }
  const json& get_array(const json& o, const char* key, const std::string& path) const {
    const json* v = find(o, key);
    if (!v || !v->is_array()) {
      input_error("{}: field '{}.{}' is {}, expected a list", file, path, key,
                  v ? v->dump() : std::string("missing"));
    }
    return *v;
  }
  std::string type_of(const json& o, const std::string& path) const {
    if (!o.is_object())
      input_error("{}: field '{}' is {}, expected an object", file, path, o.dump());
    return get_string(o, "type", path);
  }
  [[noreturn]] void unsupported(const std::string& path, const std::string& type,
                                const char* supported) const {
    input_error(
        "{}: field '{}.type' is \"{}\", expected one of {} (this component is not "
        "implemented)",
        file, path, type, supported);
  }
  // The String of a {"String": ..} pattern; Regex patterns are only accepted by Split.
  std::string string_pattern(const json& o, const std::string& path) const {
    const json& p = get_object(o, "pattern", path);
    if (const json* s = find(p, "String"); s && s->is_string()) return s->get<std::string>();
    input_error(
        "{}: field '{}.pattern' is {}, expected {{\"String\": ...}} (regex replace "
        "patterns are not implemented)",
        file, path, p.dump());
  }
};

}  // namespace

void HfTokenizer::parse_normalizer(const json& j, const std::string& where) {
  Ctx c{file_};
  std::string type = c.type_of(j, where);
  if (type == "Sequence") {
    const json& list = c.get_array(j, "normalizers", where);
    for (size_t i = 0; i < list.size(); ++i) {
      parse_normalizer(list[i], fmt::format("{}.normalizers[{}]", where, i));
    }
  } else if (type == "Prepend") {
    normalizer_.push_back({NormalizerStep::kPrepend, c.get_string(j, "prepend", where), ""});
  } else if (type == "Replace") {
    normalizer_.push_back({NormalizerStep::kReplace, c.string_pattern(j, where),
                           c.get_string(j, "content", where, "")});
  } else if (type == "NFC") {
    normalizer_.push_back({NormalizerStep::kNfc, "", ""});
  } else if (type == "Strip") {
    NormalizerStep st{NormalizerStep::kStrip, "", ""};
    st.left = c.get_bool(j, "strip_left", true, where);
    st.right = c.get_bool(j, "strip_right", true, where);
    normalizer_.push_back(st);
  } else {
    c.unsupported(where, type, "Sequence, Prepend, Replace, NFC, Strip");
  }
}

void HfTokenizer::parse_pre_tokenizer(const json& j, const std::string& where) {
  Ctx c{file_};
  std::string type = c.type_of(j, where);
  if (type == "Sequence") {
    const json& list = c.get_array(j, "pretokenizers", where);
    for (size_t i = 0; i < list.size(); ++i) {
      parse_pre_tokenizer(list[i], fmt::format("{}.pretokenizers[{}]", where, i));
    }
  } else if (type == "Split") {
    const json& p = c.get_object(j, "pattern", where);
    const json* re = c.find(p, "Regex");
    std::optional<SplitPattern> pat;
    if (re && re->is_string()) pat = find_split_pattern(re->get<std::string>());
    if (!pat) {
      input_error(
          "{}: field '{}.pattern' is {}, expected the GPT-2, Llama-3 or Qwen2 split regex "
          "(other patterns are not implemented)",
          file_, where, p.dump());
    }
    std::string behavior = c.get_string(j, "behavior", where, "Isolated");
    if (behavior != "Isolated" && behavior != "isolated") {
      input_error("{}: field '{}.behavior' is \"{}\", expected \"Isolated\"", file_, where,
                  behavior);
    }
    if (c.get_bool(j, "invert", false, where)) {
      input_error("{}: field '{}.invert' is true, expected false", file_, where);
    }
    PreTokStep st;
    st.kind = PreTokStep::kSplit;
    st.pattern = *pat;
    pre_tokenizer_.push_back(st);
  } else if (type == "ByteLevel") {
    PreTokStep st;
    st.kind = PreTokStep::kByteLevel;
    st.add_prefix_space = c.get_bool(j, "add_prefix_space", false, where);
    st.use_regex = c.get_bool(j, "use_regex", true, where);
    st.pattern = SplitPattern::kGpt2;
    pre_tokenizer_.push_back(st);
  } else if (type == "Metaspace") {
    PreTokStep st;
    st.kind = PreTokStep::kMetaspace;
    st.replacement = c.get_string(j, "replacement", where, "\xE2\x96\x81");
    std::string scheme =
        c.get_string(j, "prepend_scheme", where,
                     c.get_bool(j, "add_prefix_space", true, where) ? "always" : "never");
    if (scheme == "always") {
      st.prepend = PreTokStep::kAlways;
    } else if (scheme == "first") {
      st.prepend = PreTokStep::kFirst;
    } else if (scheme == "never") {
      st.prepend = PreTokStep::kNever;
    } else {
      input_error("{}: field '{}.prepend_scheme' is \"{}\", expected always, first or never", file_,
                  where, scheme);
    }
    st.split = c.get_bool(j, "split", true, where);
    pre_tokenizer_.push_back(st);
  } else {
    c.unsupported(where, type, "Sequence, Split, ByteLevel, Metaspace");
  }
}

void HfTokenizer::parse_post_processor(const json& j, const std::string& where) {
  Ctx c{file_};
  std::string type = c.type_of(j, where);
  if (type == "Sequence") {
    const json& list = c.get_array(j, "processors", where);
    for (size_t i = 0; i < list.size(); ++i) {
      parse_post_processor(list[i], fmt::format("{}.processors[{}]", where, i));
    }
  } else if (type == "ByteLevel") {
    // Offsets only; ids are unchanged.
  } else if (type == "TemplateProcessing") {
    const json& single = c.get_array(j, "single", where);
    const json* specials = c.find(j, "special_tokens");
    std::vector<TemplateItem> items;
    for (size_t i = 0; i < single.size(); ++i) {
      std::string path = fmt::format("{}.single[{}]", where, i);
      const json& it = single[i];
      if (c.find(it, "Sequence")) {
        items.push_back({true, {}});
        continue;
      }
      const json& sp = c.get_object(it, "SpecialToken", path);
      std::string name = c.get_string(sp, "id", path + ".SpecialToken");
      TemplateItem item;
      if (specials && specials->contains(name) && (*specials)[name].contains("ids")) {
        for (const auto& id : (*specials)[name]["ids"]) {
          if (!id.is_number_integer()) {
            input_error("{}: field '{}.special_tokens.{}.ids' has {}, expected integers", file_,
                        where, name, id.dump());
          }
          item.ids.push_back(id.get<int32_t>());
        }
      } else {
        int32_t id = find_token(name);
        if (id < 0) {
          input_error("{}: field '{}.SpecialToken.id' is \"{}\", which is not in the vocabulary",
                      file_, path, name);
        }
        item.ids.push_back(id);
      }
      items.push_back(std::move(item));
    }
    templates_.push_back(std::move(items));
  } else {
    c.unsupported(where, type, "Sequence, ByteLevel, TemplateProcessing");
  }
}

void HfTokenizer::parse_decoder(const json& j, const std::string& where) {
  Ctx c{file_};
  std::string type = c.type_of(j, where);
  DecoderStep st;
  if (type == "Sequence") {
    const json& list = c.get_array(j, "decoders", where);
    for (size_t i = 0; i < list.size(); ++i) {
      parse_decoder(list[i], fmt::format("{}.decoders[{}]", where, i));
    }
    return;
  } else if (type == "ByteLevel") {
    st.kind = DecoderStep::kByteLevel;
  } else if (type == "Replace") {
    st.kind = DecoderStep::kReplace;
    st.a = c.string_pattern(j, where);
    st.b = c.get_string(j, "content", where, "");
  } else if (type == "ByteFallback") {
    st.kind = DecoderStep::kByteFallback;
  } else if (type == "Fuse") {
    st.kind = DecoderStep::kFuse;
  } else if (type == "Strip") {
    st.kind = DecoderStep::kStrip;
    st.a = c.get_string(j, "content", where, " ");
    st.start = c.get_int(j, "start", 0, where);
    st.stop = c.get_int(j, "stop", 0, where);
  } else if (type == "Metaspace") {
    st.kind = DecoderStep::kMetaspace;
    st.a = c.get_string(j, "replacement", where, "\xE2\x96\x81");
    std::string scheme =
        c.get_string(j, "prepend_scheme", where,
                     c.get_bool(j, "add_prefix_space", true, where) ? "always" : "never");
    st.strip_first = scheme != "never";
    st.only_at_start = scheme == "first";
  } else {
    c.unsupported(where, type,
                  "Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace");
  }
  decoder_.push_back(st);
}

int32_t HfTokenizer::find_token(std::string_view s) const {
  if (auto it = added_ids_.find(s); it != added_ids_.end()) return it->second;
  auto it = model_.token_to_id.find(s);
  return it == model_.token_to_id.end() ? -1 : it->second;
}

HfTokenizer::HfTokenizer(const json& j, const std::string& file, const SpecialConfig& cfg)
    : file_(file) {
  Ctx c{file_};
  if (!j.is_object()) input_error("{}: top level is {}, expected an object", file_, j.type_name());
  if (!c.find(j, "model")) {
    input_error("{}: field 'model' is missing, expected an object with \"type\": \"BPE\"", file_);
  }
  const json& m = c.get_object(j, "model", "");
  std::string type = c.get_string(m, "type", "model", c.find(m, "merges") ? "BPE" : "");
  if (type != "BPE") {
    input_error(
        "{}: field 'model.type' is \"{}\", expected \"BPE\" (WordPiece and Unigram "
        "tokenizer.json models are not implemented)",
        file_, type);
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (!c.get_string(m, key, "model", "").empty()) {
      input_error("{}: field 'model.{}' is \"{}\", expected empty or null (not implemented)", file_,
                  key, c.get_string(m, key, "model"));
    }
  }

  // Vocabulary and added tokens.
  const json& vocab = c.get_object(m, "vocab", "model");
  int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() >= kMaxVocab) {
      input_error("{}: field 'model.vocab' maps \"{}\" to {}, expected an integer id in 0..2^24",
                  file_, it.key(), it->dump());
    }
    max_id = std::max(max_id, it->get<int32_t>());
  }
  if (const json* list = c.find(j, "added_tokens")) {
    if (!list->is_array()) {
      input_error("{}: field 'added_tokens' is {}, expected a list", file_, list->type_name());
    }
    for (size_t i = 0; i < list->size(); ++i) {
      const json& a = (*list)[i];
      std::string path = fmt::format("added_tokens[{}]", i);
      if (!a.is_object())
        input_error("{}: field '{}' is {}, expected an object", file_, path, a.dump());
      AddedToken t;
      t.content = c.get_string(a, "content", path);
      t.id = c.get_int(a, "id", -1, path);
      if (t.id < 0 || t.id >= kMaxVocab) {
        input_error("{}: field '{}.id' is missing or out of range, expected 0..{}", file_, path,
                    kMaxVocab - 1);
      }
      t.special = c.get_bool(a, "special", false, path);
      t.lstrip = c.get_bool(a, "lstrip", false, path);
      t.rstrip = c.get_bool(a, "rstrip", false, path);
      t.single_word = c.get_bool(a, "single_word", false, path);
      t.normalized = c.get_bool(a, "normalized", !t.special, path);
      max_id = std::max(max_id, t.id);
      added_.push_back(std::move(t));
    }
  }
  model_.id_to_token.assign(size_t(max_id + 1), std::string());
  model_.token_to_id.reserve(vocab.size() + added_.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    int32_t id = it->get<int32_t>();
    model_.id_to_token[id] = it.key();
    model_.token_to_id[it.key()] = id;
  }
  // Added tokens are not part of the BPE vocabulary (as in HF tokenizers; the JS port adds them,
  // which only shows when a single_word match is dropped).
  for (size_t i = 0; i < added_.size(); ++i) {
    const AddedToken& t = added_[i];
    model_.id_to_token[t.id] = t.content;
    added_ids_[t.content] = t.id;
    added_index_[t.id] = i;
  }
  vocab_size_ = max_id + 1;
  model_.byte_fallback = c.get_bool(m, "byte_fallback", false, "model");
  model_.ignore_merges = c.get_bool(m, "ignore_merges", false, "model");
  model_.fuse_unk = c.get_bool(m, "fuse_unk", false, "model");
  if (const json* unk = c.find(m, "unk_token")) {
    if (!unk->is_string()) {
      input_error("{}: field 'model.unk_token' is {}, expected a string", file_, unk->dump());
    }
    model_.unk_id = find_token(unk->get<std::string>());
  }
  if (const json* merges = c.find(m, "merges")) {
    model_.set_merges(*merges, file_);
  } else {
    model_.set_merges(json::array(), file_);
  }

  // Pipeline.
  if (const json* n = c.find(j, "normalizer")) {
    has_normalizer_ = true;
    parse_normalizer(*n, "normalizer");
  }
  if (const json* p = c.find(j, "pre_tokenizer")) parse_pre_tokenizer(*p, "pre_tokenizer");
  if (const json* p = c.find(j, "post_processor")) parse_post_processor(*p, "post_processor");
  if (const json* d = c.find(j, "decoder")) {
    has_decoder_ = true;
    parse_decoder(*d, "decoder");
  }

  // Added tokens marked "normalized" are matched in the normalized text, by their normalized
  // content (the reference does this only when there is a normalizer).
  std::vector<const AddedToken*> raw, norm;
  normalized_added_.reserve(added_.size());
  for (const auto& t : added_) {
    if (t.normalized && has_normalizer_) {
      AddedToken n = t;
      n.content = normalize(normalizer_, t.content);
      normalized_added_.push_back(std::move(n));
    } else {
      raw.push_back(&t);
    }
  }
  for (const auto& t : normalized_added_) norm.push_back(&t);
  match_raw_.build(raw);
  match_normalized_.build(norm);

  // BOS / EOS.
  if (cfg.bos_token) {
    bos_id_ = find_token(*cfg.bos_token);
  } else if (!cfg.bos_token_null) {
    for (const auto& tmpl : templates_) {
      if (!tmpl.empty() && !tmpl[0].is_sequence && !tmpl[0].ids.empty()) bos_id_ = tmpl[0].ids[0];
    }
    if (bos_id_ < 0 && !cfg.bos_ids.empty()) bos_id_ = cfg.bos_ids[0];
    for (const char* name : {"<s>", "<|begin_of_text|>", "<bos>", "<|bos|>"}) {
      if (bos_id_ < 0) bos_id_ = find_token(name);
    }
  }
  auto add_eos = [&](int32_t id) {
    if (id >= 0 && std::find(eos_ids_.begin(), eos_ids_.end(), id) == eos_ids_.end()) {
      eos_ids_.push_back(id);
    }
  };
  if (cfg.eos_token) add_eos(find_token(*cfg.eos_token));
  for (int32_t id : cfg.eos_ids) add_eos(id);
  if (eos_ids_.empty()) {
    for (const char* name : {"</s>", "<|end_of_text|>", "<|eot_id|>", "<|endoftext|>", "<|im_end|>",
                             "<eos>", "<|eos|>"}) {
      add_eos(find_token(name));
    }
  }
  if (templates_.empty()) {
    add_bos_ = cfg.add_bos_token.value_or(false) && bos_id_ >= 0;
    add_eos_ = cfg.add_eos_token.value_or(false) && !eos_ids_.empty();
  }
}

void HfTokenizer::encode_section(std::string text, bool first_section,
                                 std::vector<int32_t>* ids) const {
  std::vector<std::string> words;
  pre_tokenize(pre_tokenizer_, std::move(text), first_section, &words);
  size_t begin = ids->size();
  for (const auto& w : words) model_.encode_word(w, ids);
  if (model_.fuse_unk && model_.unk_id >= 0) {
    auto end = std::unique(ids->begin() + begin, ids->end(), [&](int32_t a, int32_t b) {
      return a == model_.unk_id && b == model_.unk_id;
    });
    ids->erase(end, ids->end());
  }
}

std::vector<int32_t> HfTokenizer::encode(const std::string& text, bool add_special) const {
  std::vector<int32_t> ids;
  for (const auto& s : match_raw_.split(text)) {
    if (s.token >= 0) {
      ids.push_back(match_raw_.token(s.token).id);
      continue;
    }
    std::string section = text.substr(s.begin, s.end - s.begin);
    if (has_normalizer_) section = normalize(normalizer_, std::move(section));
    if (section.empty()) continue;
    for (const auto& n : match_normalized_.split(section)) {
      if (n.token >= 0) {
        ids.push_back(match_normalized_.token(n.token).id);
      } else {
        encode_section(section.substr(n.begin, n.end - n.begin), s.begin == 0, &ids);
      }
    }
  }
  if (!templates_.empty()) {
    for (const auto& tmpl : templates_) {
      std::vector<int32_t> out;
      for (const auto& item : tmpl) {
        if (item.is_sequence) {
          out.insert(out.end(), ids.begin(), ids.end());
        } else if (add_special) {
          out.insert(out.end(), item.ids.begin(), item.ids.end());
        }
      }
      ids.swap(out);
    }
  } else if (add_special) {
    if (add_bos_) ids.insert(ids.begin(), bos_id_);
    if (add_eos_) ids.push_back(eos_ids_[0]);
  }
  return ids;
}

std::string HfTokenizer::run_bytes(const std::vector<int32_t>& run, bool sequence_start) const {
  std::vector<std::string> tokens;
  tokens.reserve(run.size());
  for (int32_t id : run) tokens.push_back(model_.id_to_token[id]);
  if (!has_decoder_) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  return decode_run(decoder_, std::move(tokens), sequence_start);
}

std::string HfTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  std::vector<int32_t> run;
  bool sequence_start = true;
  auto flush = [&] {
    if (!run.empty()) out += run_bytes(run, sequence_start);
    run.clear();
  };
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size_) {
      input_error("token id {} is out of range, expected 0..{} ({})", id, vocab_size_ - 1, file_);
    }
    if (auto it = added_index_.find(id); it != added_index_.end()) {
      flush();
      out += added_[it->second].content;
      sequence_start = false;
    } else {
      run.push_back(id);
    }
  }
  flush();
  return unicode::sanitize_utf8(out);
}

std::string HfTokenizer::token_bytes(int32_t id, int32_t prev) const {
  if (id < 0 || id >= vocab_size_) {
    input_error("token id {} is out of range, expected 0..{} ({})", id, vocab_size_ - 1, file_);
  }
  if (auto it = added_index_.find(id); it != added_index_.end()) return added_[it->second].content;
  if (prev < 0 || prev >= vocab_size_) return run_bytes({id}, true);
  if (is_added(prev)) return run_bytes({id}, false);
  // The decoder chain may treat the first token of a run specially (Strip, Metaspace): what id
  // adds after prev is the difference of the two runs.
  std::string both = run_bytes({prev, id}, false), first = run_bytes({prev}, false);
  if (both.compare(0, first.size(), first) == 0) return both.substr(first.size());
  return run_bytes({id}, false);
}

}  // namespace moa::tok
