// libFuzzer harness for plan files, both forms: the reference {"alphas", "betas"} and the extended
// {"format": "moa-plan/1", "rules": [...], sink, block, min_cache, density, ...}. Plan::load, then
// what a run does with a plan (the shape check against a model of the plan's own shape, the cache
// rule and densities at several lengths), then a rewrite in each form it can be written in, which
// must read back to the same text.
//
// Only moa::InputError may leave the load (fuzz_common.h); the rewrite must be accepted.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "fuzz_common.h"
#include "moa/attention/plan.h"

namespace {

void use(const moa::Plan& p) {
  const moa::AttentionShape shape{p.layers(), p.heads(), p.heads(), 64};
  (void)p.check_shape(shape);
  double sum = 0;
  // Lengths a run may ask for, up to 1M tokens.
  for (int64_t n : {int64_t(1), int64_t(100), int64_t(4096), int64_t(1) << 20}) {
    const moa::PlanCaches c = p.caches(shape, n);
    for (const moa::HeadCache& h : c.at) {
      sum += double(h.kept) + double(h.span.sink) + double(h.span.window);
    }
    sum += p.kv_density(shape, n) + p.stored_density(shape, n) + p.prefill_density(shape, n);
    sum += p.is_dense_at(n);
  }
  sum += p.uniform_rule().has_value();
  if (sum == 1) std::fputc(' ', stderr);  // keeps the work from being optimised away
}

// A plan we wrote must read back, and be written again byte for byte.
void check_rewrite(const std::string& text) {
  const moa::Plan back = moa::Plan::parse(text, "rewrite");
  const std::string again =
      back.form() == moa::PlanForm::kReference ? back.to_reference_text() : back.to_extended_text();
  if (again != text) {
    std::fprintf(stderr, "plan rewrite differs:\n%s\n---\n%s\n", text.c_str(), again.c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::filesystem::path file = moa::fuzz::scratch_dir("plan") / "plan.json";
  moa::fuzz::write_file(file, data, size);
  std::optional<moa::Plan> p;
  moa::fuzz::expect_only_input_errors([&] {
    p = moa::Plan::load(file);
    use(*p);
  });
  if (!p) return 0;
  check_rewrite(p->to_extended_text());
  if (p->representable_as_reference()) check_rewrite(p->to_reference_text());
  return 0;
}
