// GGUF -> GGUF requantisation (see include/moa/convert/convert.h, quantize_gguf).
#include <fmt/format.h>

#include "convert/convert_internal.h"
#include "moa/convert/convert.h"
#include "moa/core/error.h"
#include "moa/gguf/gguf.h"
#include "moa/gguf/gguf_writer.h"
#include "moa/gguf/quantize.h"

namespace moa {

namespace {

int64_t layer_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  try {
    return std::stoll(name.substr(4));
  } catch (const std::exception&) {
    return -1;
  }
}

// The bytes of t unchanged.
std::function<void(GgufSink&)> copy_writer(const GgufTensor& t) {
  return [&t](GgufSink& s) { s.write(t.data, size_t(t.nbytes)); };
}

// Each row of t dequantised to f32 and quantised to `to`.
std::function<void(GgufSink&)> requant_writer(const GgufTensor& t, GgmlType to) {
  return [&t, to](GgufSink& s) {
    const int64_t cols = t.cols();
    const int64_t in_rb = ggml_row_bytes(t.type(), cols);
    std::vector<float> row(static_cast<size_t>(cols));
    std::vector<uint8_t> out(size_t(ggml_row_bytes(to, cols)));
    for (int64_t r = 0; r < t.rows(); ++r) {
      dequantize_row_ref(t.type(), t.data + r * in_rb, cols, row.data());
      quantize_row_ref(to, row.data(), cols, out.data());
      s.write(out.data(), out.size());
    }
  };
}

}  // namespace

ConvertResult quantize_gguf(const std::filesystem::path& in, const std::filesystem::path& out,
                            const std::string& type, const ConvertProgress& progress) {
  const OutputType ot = parse_output_type(type);
  const GgufFile g(in);
  if (std::filesystem::exists(out) && std::filesystem::equivalent(in, out)) {
    input_error("{}: the output is the input file (write to another path)", out.string());
  }
  GgufWriter w;
  for (const auto& [k, v] : g.metadata()) w.set(k, GgufOwnedValue::copy_of(v));
  w.set("general.file_type", GgufOwnedValue::u32(ot.ftype));
  const std::string arch = g.get_string("general.architecture", "");
  const int64_t layers = g.get_int(arch + ".block_count", 0);
  const bool tied = g.find_tensor("output.weight") == nullptr;
  for (const GgufTensor& t : g.tensors()) {
    GgufTensorOut o;
    o.name = t.name;
    o.ne = t.ne;
    o.type = t.type();
    const bool matrix = t.ne.size() == 2;
    if (matrix) {
      if (!ggml_type_traits(t.type_id).computable) {
        input_error("{}: tensor '{}' is {}, which moa cannot dequantise (supported: {})", g.file(),
                    t.name, t.type_name(), ggml_computable_types());
      }
      o.type = tensor_type_for(ot, t.name, t.cols(), 2, layer_of(t.name), layers, tied);
    }
    o.fill = o.type == t.type() ? copy_writer(t) : requant_writer(t, o.type);
    w.add_tensor(std::move(o));
  }
  ConvertResult res = conv::write_gguf(w, out, ot.name, progress);
  res.plan = g.find("moa.format") != nullptr;
  res.tokenizer = g.find("tokenizer.ggml.model") != nullptr;
  return res;
}

}  // namespace moa
