// Decoders of tokenizer.json: token strings back to bytes, run by run between added tokens.
#include "tokenizer/tokenizer_internal.h"
#include "moa/tokenizer/unicode.h"

namespace moa::tok {

std::string decode_run(const std::vector<DecoderStep>& steps, std::vector<std::string> tokens,
                       bool sequence_start) {
  for (const auto& st : steps) {
    switch (st.kind) {
      case DecoderStep::kByteLevel:
        for (auto& t : tokens) {
          std::vector<char32_t> cps;
          unicode::decode_utf8(t, &cps);
          std::string out;
          for (char32_t cp : cps) {
            int b = unicode_to_byte(cp);
            if (b >= 0) {
              out += char(b);
            } else {
              unicode::append_utf8(out, cp);
            }
          }
          t.swap(out);
        }
        break;
      case DecoderStep::kReplace:
        for (auto& t : tokens) replace_all(t, st.a, st.b);
        break;
      case DecoderStep::kByteFallback: {
        std::vector<std::string> out;
        std::string bytes;
        for (auto& t : tokens) {
          auto hex = [](char ch) {
            return (ch >= '0' && ch <= '9')   ? ch - '0'
                   : (ch >= 'A' && ch <= 'F') ? ch - 'A' + 10
                   : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10
                                              : -1;
          };
          if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && hex(t[3]) >= 0 &&
              hex(t[4]) >= 0) {
            bytes += char(hex(t[3]) * 16 + hex(t[4]));
            continue;
          }
          if (!bytes.empty()) out.push_back(std::move(bytes)), bytes.clear();
          out.push_back(std::move(t));
        }
        if (!bytes.empty()) out.push_back(std::move(bytes));
        tokens.swap(out);
        break;
      }
      case DecoderStep::kFuse: {
        std::string all;
        for (auto& t : tokens) all += t;
        tokens.assign(1, std::move(all));
        break;
      }
      case DecoderStep::kStrip:
        for (auto& t : tokens) {
          size_t b = 0, e = t.size();
          const std::string& c = st.a;
          for (int k = 0; k < st.start && !c.empty() && t.compare(b, c.size(), c) == 0; ++k) {
            b += c.size();
          }
          for (int k = 0; k < st.stop && !c.empty() && e >= b + c.size() &&
                          t.compare(e - c.size(), c.size(), c) == 0;
               ++k) {
            e -= c.size();
          }
          t = t.substr(b, e - b);
        }
        break;
      case DecoderStep::kMetaspace:
        for (size_t k = 0; k < tokens.size(); ++k) {
          replace_all(tokens[k], st.a, " ");
          bool strip = st.strip_first && (sequence_start || !st.only_at_start);
          if (k == 0 && strip && !tokens[k].empty() && tokens[k][0] == ' ') {
            tokens[k].erase(0, 1);
          }
        }
        break;
    }
  }
  std::string out;
  for (auto& t : tokens) out += t;
  return out;
}

}  // namespace moa::tok
