// Writes the seed corpus of the fuzz harnesses: small valid update logs,
// checkpoints and learned-model files made by real runs, one directory per
// reader. Usage: zoopt_fuzz_make_corpus <out-dir>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include <zoopt/kerzoo.hpp>

namespace fs = std::filesystem;

namespace {

void write(const fs::path& p, const std::vector<unsigned char>& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

template <class T>
std::vector<T> values(std::size_t n) {
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = T(std::sin(0.7f * static_cast<float>(i)) * 0.5f);
  return v;
}

template <class T>
double loss(const zoopt::ParameterSet<T>& p) {
  double s = 0.0;
  p.for_each([&](const std::string&, std::span<T> x) {
    for (const T v : x) {
      const double d = static_cast<double>(static_cast<float>(v)) - 0.25;
      s += d * d;
    }
  });
  return s;
}

// A run of `steps` steps of `opt` on two spans (one without weight decay):
// its update log and a checkpoint (with and without the parameters).
template <class T, class Opt>
void run(const fs::path& out, const std::string& tag, Opt opt, int steps) {
  std::vector<T> w = values<T>(24);
  std::vector<T> b = values<T>(5);
  zoopt::ParameterSet<T> set;
  // A shape for the weight (read by LowRankSampler runs, which then write
  // version-2 files).
  set.add("layer.weight", std::span<T>(w), {.shape = {4, 6}})
      .add("layer.bias", std::span<T>(b), {false});
  opt.set_warning_sink([](const std::string&) {});
  auto log = zoopt::UpdateLog::for_optimizer(opt, set);
  opt.optimize(loss<T>, set, static_cast<std::size_t>(steps), log.recorder(opt));
  write(out / "update_log" / (tag + ".zlog"), log.serialize());
  write(out / "checkpoint" / (tag + ".zckp"),
        zoopt::checkpoint::serialize(zoopt::checkpoint::capture(opt, set)));
  auto state_only = zoopt::checkpoint::capture(opt, set);
  state_only.has_params = false;
  state_only.spans.clear();
  write(out / "checkpoint" / (tag + "-state.zckp"), zoopt::checkpoint::serialize(state_only));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <out-dir>\n", argv[0]);
    return 2;
  }
  const fs::path out(argv[1]);
  run<float>(out, "mezo-float", zoopt::MeZO<float>({.lr = 0.05, .eps = 1e-2, .seed = 1}), 6);
  run<double>(out, "kerzoo-double",
              zoopt::KerZOO<double>({.lr = 0.05, .eps = 1e-2, .directions = 3, .seed = 2}), 4);
  run<zoopt::half>(
      out, "mezo-half-rademacher",
      zoopt::MeZO<zoopt::half, zoopt::RademacherSampler>({.lr = 0.05, .eps = 1e-2, .seed = 3}), 5);
  run<float>(out, "mezo-lowrank-float",
             zoopt::MeZO<float, zoopt::LowRankSampler<>>({.lr = 0.05, .eps = 1e-2, .seed = 5}), 6);
  run<zoopt::bfloat16>(
      out, "mezo-bf16-forward",
      zoopt::MeZO<zoopt::bfloat16, zoopt::GaussianSampler, zoopt::ForwardDifference>(
          {.lr = 0.05, .eps = 1e-2, .directions = 2, .seed = 4}),
      5);
  {
    // The fine-tuner: per-span scales in the log, extra state in the
    // checkpoint, and its model file.
    std::vector<float> w = values<float>(24);
    std::vector<float> b = values<float>(5);
    zoopt::ParameterSet<float> set;
    set.add("layer.weight", std::span<float>(w)).add("layer.bias", std::span<float>(b), {false});
    zoopt::PerturbationModel model = zoopt::PerturbationModel::unit(set, 7);
    model.block(0).net.b2 = 1.5;
    zoopt::ZOFineTuner<float> ft({.lr = 0.05, .eps = 1e-2, .seed = 5}, model, set);
    auto log = zoopt::UpdateLog::for_optimizer(ft, set);
    ft.optimize(loss<float>, set, 4, log.recorder(ft));
    write(out / "update_log" / "zo-finetuner.zlog", log.serialize());
    write(out / "checkpoint" / "zo-finetuner.zckp",
          zoopt::checkpoint::serialize(zoopt::checkpoint::capture(ft, set)));
    write(out / "model_file" / "two-blocks.zpnn", model.serialize());
  }
  std::printf("corpus written to %s\n", out.string().c_str());
  return 0;
}
