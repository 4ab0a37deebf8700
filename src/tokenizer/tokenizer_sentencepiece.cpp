// tokenizer.model through libsentencepiece. Like the Hugging Face slow Llama tokenizer (legacy
// mode), special tokens written in the text are split out first and each piece of plain text is
// encoded on its own; BOS is added when tokenizer_config.json's add_bos_token says so (default
// true, as in LlamaTokenizer).
#include <sentencepiece_processor.h>

#include <algorithm>
#include <unordered_set>

#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/tokenizer/unicode.h"
#include "tokenizer/tokenizer_internal.h"

namespace moa::tok {

namespace {

class SpTokenizer final : public Tokenizer {
 public:
  SpTokenizer(const std::filesystem::path& file, const SpecialConfig& cfg) : file_(file.string()) {
    const std::string bytes = read_text(file);
    check_sentencepiece_model(bytes, file_);
    if (auto st = sp_.LoadFromSerializedProto(bytes); !st.ok()) {
      input_error("{}: not a SentencePiece model ({})", file_, st.ToString());
    }
    vocab_size_ = sp_.GetPieceSize();
    // Control and unknown pieces (<s>, </s>, <unk>) are matched in the text like HF does; the
    // added tokens of tokenizer_config.json too (they may extend the vocabulary).
    for (int id = 0; id < sp_.GetPieceSize(); ++id) {
      if (sp_.IsControl(id) || sp_.IsUnknown(id)) {
        AddedToken t;
        t.content = sp_.IdToPiece(id);
        t.id = id;
        t.special = true;
        specials_.push_back(t);
      }
    }
    for (const auto& a : cfg.added_tokens) {
      auto it = std::find_if(specials_.begin(), specials_.end(),
                             [&](const AddedToken& t) { return t.id == a.id; });
      if (it != specials_.end()) {
        *it = a;
      } else if (a.id >= sp_.GetPieceSize() || sp_.IdToPiece(a.id) != a.content) {
        specials_.push_back(a);
      }
      vocab_size_ = std::max(vocab_size_, a.id + 1);
    }
    std::vector<const AddedToken*> ptrs;
    for (const auto& t : specials_) {
      ptrs.push_back(&t);
      special_index_[t.id] = ptrs.size() - 1;
    }
    matcher_.build(ptrs);

    auto find = [&](const std::string& s) -> int32_t {
      for (const auto& t : specials_) {
        if (t.content == s) return t.id;
      }
      int id = sp_.PieceToId(s);
      return (id == sp_.unk_id() && s != sp_.IdToPiece(id)) ? -1 : id;
    };
    if (cfg.bos_token) {
      bos_id_ = find(*cfg.bos_token);
    } else if (!cfg.bos_token_null) {
      bos_id_ = sp_.bos_id();
    }
    if (cfg.eos_token) eos_ids_.push_back(find(*cfg.eos_token));
    for (int32_t id : cfg.eos_ids) eos_ids_.push_back(id);
    if (eos_ids_.empty() && sp_.eos_id() >= 0) eos_ids_.push_back(sp_.eos_id());
    eos_ids_.erase(std::remove(eos_ids_.begin(), eos_ids_.end(), -1), eos_ids_.end());
    std::sort(eos_ids_.begin(), eos_ids_.end());
    eos_ids_.erase(std::unique(eos_ids_.begin(), eos_ids_.end()), eos_ids_.end());
    add_bos_ = cfg.add_bos_token.value_or(true) && bos_id_ >= 0;
    add_eos_ = cfg.add_eos_token.value_or(false) && !eos_ids_.empty();
  }

  std::vector<int32_t> encode(const std::string& text, bool add_special) const override {
    std::vector<int32_t> ids;
    if (add_special && add_bos_) ids.push_back(bos_id_);
    std::vector<int> piece_ids;
    for (const auto& s : matcher_.split(text)) {
      if (s.token >= 0) {
        ids.push_back(matcher_.token(s.token).id);
        continue;
      }
      piece_ids.clear();
      if (auto st = sp_.Encode(std::string_view(text).substr(s.begin, s.end - s.begin), &piece_ids);
          !st.ok()) {
        input_error("{}: SentencePiece cannot encode the text ({})", file_, st.ToString());
      }
      ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
    }
    if (add_special && add_eos_) ids.push_back(eos_ids_[0]);
    return ids;
  }

  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string out;
    std::vector<int> run;
    auto flush = [&] {
      if (!run.empty()) out += sp_.DecodeIds(run);
      run.clear();
    };
    for (int32_t id : ids) {
      check(id);
      if (auto it = special_index_.find(id); it != special_index_.end()) {
        flush();
        out += specials_[it->second].content;
      } else {
        run.push_back(id);
      }
    }
    flush();
    return unicode::sanitize_utf8(out);
  }

  std::string token_bytes(int32_t id, int32_t prev) const override {
    check(id);
    if (auto it = special_index_.find(id); it != special_index_.end()) {
      return specials_[it->second].content;
    }
    const std::string& piece = sp_.IdToPiece(id);
    if (sp_.IsByte(id)) return std::string(1, char(std::stoi(piece.substr(3, 2), nullptr, 16)));
    bool run_start = prev < 0 || prev >= vocab_size_ || special_index_.count(prev) != 0;
    if (run_start) return sp_.DecodeIds({id});
    std::string s = piece;
    replace_all(s, "\xE2\x96\x81", " ");
    return s;
  }

  int32_t vocab_size() const override { return vocab_size_; }
  int32_t bos_id() const override { return bos_id_; }
  std::vector<int32_t> eos_ids() const override { return eos_ids_; }

 private:
  void check(int32_t id) const {
    if (id < 0 || id >= vocab_size_) {
      input_error("token id {} is out of range, expected 0..{} ({})", id, vocab_size_ - 1, file_);
    }
  }

  std::string file_;
  sentencepiece::SentencePieceProcessor sp_;
  std::vector<AddedToken> specials_;
  std::unordered_map<int32_t, size_t> special_index_;
  AddedTokenMatcher matcher_;
  int32_t vocab_size_ = 0;
  int32_t bos_id_ = -1;
  std::vector<int32_t> eos_ids_;
  bool add_bos_ = true, add_eos_ = false;
};

}  // namespace

std::unique_ptr<Tokenizer> load_sentencepiece(const std::filesystem::path& file,
                                              const SpecialConfig& cfg) {
  return std::make_unique<SpTokenizer>(file, cfg);
}

}  // namespace moa::tok
