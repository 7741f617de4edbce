// zoopt_torch_transformer: a libtorch vision transformer (231k parameters,
// patch_transformer.hpp) pre-trained first-order on Fashion-MNIST classes
// 0-4, then fine-tuned on classes 5-9 with a new head, by backprop (Adam)
// or by zoopt's ZO optimizers through zoopt::torch. One phase per process,
// so that each fine-tuning run's peak memory is its own:
//
//   zoopt_torch_transformer --phase pretrain --out DIR
//   zoopt_torch_transformer --phase finetune --method M --out DIR [--passes N]
//   zoopt_torch_transformer --phase export-start --torchscript FILE --out DIR
//   zoopt_torch_transformer --phase plot --out DIR    (DIR/curves.svg)
//
// M: backprop (Adam on the fine-tuned tensors), backprop-full (Adam on every
// tensor), mezo, fzoo. The fine-tuned tensors are the new head and every
// LayerNorm (1,829 parameters; --all-tensors: all 231,365); the rest stays
// as pre-trained. Every method
// gets the same budget of forward passes (a backprop step counts one
// forward pass; it also makes a backward pass). A fine-tuning run prints a
// progress bar, writes DIR/curve_<method>.csv and one "RESULT" line with its
// figures; examples/torch/run.sh runs every phase and prints the table.
//
// --torchscript FILE uses a TorchScript module (export_torchscript.py writes
// the same network) instead of the C++ definition, loaded with
// torch::jit::load and bound with zoopt::torch::bind the same way.
// --phase export-start saves that module with the pre-trained weights and
// the new head of --seed to DIR/start_seed<S>.pt: the starting point of
// fine-tuning, for mezo_peer.py (MeZO as written in PyTorch).
#include <torch/script.h>
#include <torch/torch.h>

#include <zoopt/kerzoo.hpp>
#include <zoopt/torch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "fashion_mnist.hpp"
#include "patch_transformer.hpp"
#include "plot_curves.hpp"
#include "run_memory.hpp"

namespace {

namespace fs = std::filesystem;

struct Options {
  std::string phase;
  std::string method = "fzoo";
  std::string out = "zoopt-torch-out";
  std::string data;
  std::string torchscript;
  std::uint64_t passes = 9000;
  std::uint64_t seed = 0;
  int threads = 2;
  bool smoke = false;
  bool all_tensors = false;
  double lr = 0.0;  // 0: the method's default
  std::int64_t d_model = vit::Config{}.d_model;
  std::int64_t layers = vit::Config{}.layers;
  /// A model of another size than the pre-trained one: memory measurements
  /// only (random initialisation).
  [[nodiscard]] bool resized() const {
    return d_model != vit::Config{}.d_model || layers != vit::Config{}.layers;
  }
  /// The method's name in file names and the RESULT line.
  [[nodiscard]] std::string label() const {
    return all_tensors && method != "backprop-full" ? method + "-all" : method;
  }
  [[nodiscard]] double lr_or(double fallback) const { return lr > 0.0 ? lr : fallback; }
};

/// Images and labels of one split whose labels are in [first, first + 5),
/// relabelled 0..4.
struct Task {
  torch::Tensor x;
  torch::Tensor y;
};
Task task(const fmnist::Split& s, int first) {
  std::vector<std::int64_t> rows;
  for (std::size_t i = 0; i < s.count; ++i) {
    if (s.labels[i] >= first && s.labels[i] < first + 5)
      rows.push_back(static_cast<std::int64_t>(i));
  }
  const torch::Tensor all =
      torch::from_blob(const_cast<float*>(s.pixels.data()),
                       {static_cast<std::int64_t>(s.count), 784}, torch::kFloat);
  std::vector<std::int64_t> labels(rows.size());
  for (std::size_t k = 0; k < rows.size(); ++k) labels[k] = s.labels[rows[k]] - first;
  const torch::Tensor index = torch::tensor(rows);
  return {all.index_select(0, index).clone(), torch::tensor(labels)};
}

/// The minibatch of step t (64 rows drawn from (seed, t)).
torch::Tensor batch_rows(const Task& t, std::uint64_t seed, std::uint64_t step, int size = 64) {
  torch::Generator g = at::detail::createCPUGenerator(seed * 1000003ULL + step);
  return torch::randint(t.x.size(0), {size}, g, torch::kLong);
}

/// Test accuracy and mean loss, without autograd, 250 images at a time (so
/// that evaluation does not set the peak memory of a run).
template <class Forward>
std::pair<double, double> evaluate(Forward& forward, const Task& test) {
  const torch::NoGradGuard no_grad;
  double loss = 0.0;
  double correct = 0.0;
  const std::int64_t n = test.x.size(0);
  for (std::int64_t at = 0; at < n; at += 250) {
    const std::int64_t m = std::min<std::int64_t>(250, n - at);
    const torch::Tensor logits = forward(test.x.narrow(0, at, m));
    const torch::Tensor y = test.y.narrow(0, at, m);
    loss += torch::nn::functional::cross_entropy(logits, y).item<double>() * static_cast<double>(m);
    correct += logits.argmax(1).eq(y).sum().item<double>();
  }
  return {correct / static_cast<double>(n), loss / static_cast<double>(n)};
}

/// The model behind one interface: the C++ module or a TorchScript one.
struct Model {
  vit::PatchTransformer native{nullptr};
  torch::jit::Module script;
  bool is_script = false;

  torch::Tensor operator()(const torch::Tensor& x) {
    if (is_script) return script.forward({x}).toTensor();
    return native->forward(x);
  }
  std::vector<torch::Tensor> parameters() {
    if (!is_script) return native->parameters();
    std::vector<torch::Tensor> p;
    for (const auto& t : script.parameters()) p.push_back(t);
    return p;
  }
  std::vector<std::pair<std::string, torch::Tensor>> named() {
    return is_script ? zoopt::torch::detail::named(script) : zoopt::torch::detail::named(native);
  }
  template <class T>
  zoopt::torch::Binding<T> bind(const zoopt::torch::BindOptions& o) {
    return is_script ? zoopt::torch::Binding<T>(script, o) : zoopt::torch::Binding<T>(native, o);
  }
};

bool head_or_norm(const std::string& name) {
  return name.rfind("head.", 0) == 0 || name.find("norm") != std::string::npos;
}

Model load_model(const Options& o, bool pretrained) {
  Model m;
  torch::manual_seed(static_cast<std::uint64_t>(o.seed));
  if (!o.torchscript.empty()) {
    m.script = torch::jit::load(o.torchscript);
    m.is_script = true;
  } else {
    m.native = vit::PatchTransformer(vit::Config{.d_model = o.d_model, .layers = o.layers});
  }
  if (pretrained && o.resized()) {
    std::printf("d_model %lld, %lld layers: randomly initialised (for memory figures only)\n",
                static_cast<long long>(o.d_model), static_cast<long long>(o.layers));
  } else if (pretrained) {
    std::vector<torch::Tensor> saved;
    torch::load(saved, (fs::path(o.out) / "pretrained.pt").string());
    auto params = m.parameters();
    if (saved.size() != params.size()) {
      throw std::runtime_error("pretrained.pt does not match this model; run --phase pretrain");
    }
    const torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < params.size(); ++i) params[i].copy_(saved[i]);
  }
  return m;
}

int pretrain(const Options& o, const fmnist::Dataset& data) {
  Model m = load_model(o, false);
  const Task train = task(data.train, 0);
  const Task test = task(data.test, 0);
  torch::optim::Adam adam(m.parameters(), torch::optim::AdamOptions(1e-3));
  const std::uint64_t steps = o.smoke ? 20 : 600;
  const auto t0 = std::chrono::steady_clock::now();
  zoopt::ProgressBar bar("pretrain");
  bar.on_begin(steps);
  for (std::uint64_t t = 0; t < steps; ++t) {
    const torch::Tensor rows = batch_rows(train, o.seed + 17, t, 128);
    adam.zero_grad();
    const torch::Tensor loss = torch::nn::functional::cross_entropy(
        m(train.x.index_select(0, rows)), train.y.index_select(0, rows));
    loss.backward();
    adam.step();
    bar.on_step({t, steps, t + 1, loss.item<double>(), t + 1,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()});
  }
  const auto [acc, loss] = evaluate(m, test);
  std::printf(
      "pre-trained on classes 0-4: %llu Adam steps (batch 128) in %.1f s, test accuracy %.2f%%, "
      "loss %.4f\n",
      static_cast<unsigned long long>(steps),
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 100 * acc,
      loss);
  fs::create_directories(o.out);
  std::vector<torch::Tensor> params;
  for (const auto& p : m.parameters()) params.push_back(p.detach().clone());
  torch::save(params, (fs::path(o.out) / "pretrained.pt").string());
  return 0;
}

}  // namespace

namespace {

/// Re-initialises the head (new classes): U(-1/sqrt(d), 1/sqrt(d)) as
/// torch::nn::Linear does, from the run's seed.
void new_head(Model& m, std::uint64_t seed, std::int64_t d_model) {
  torch::manual_seed(seed + 99);
  const torch::NoGradGuard no_grad;
  for (auto& [name, t] : m.named()) {
    if (name.rfind("head.", 0) != 0) continue;
    const double bound = 1.0 / std::sqrt(static_cast<double>(d_model));
    t.uniform_(-bound, bound);
  }
}

struct Curve {
  std::ofstream csv;
  const Task* test;
  Model* model;
  std::uint64_t every;
  std::uint64_t next;
  double eval_seconds = 0.0;
  void point(std::uint64_t step, std::uint64_t passes, double seconds, double train_loss) {
    if (passes < next) return;
    next += every;
    const double training_seconds = seconds - eval_seconds;  // earlier evaluations excluded
    const auto t0 = std::chrono::steady_clock::now();
    const auto [acc, loss] = evaluate(*model, *test);
    eval_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    csv << step << ',' << passes << ',' << training_seconds << ',' << train_loss << ',' << loss
        << ',' << acc << '\n';
  }
};

int finetune(const Options& o, const fmnist::Dataset& data) {
  const Task train = task(data.train, 5);
  const Task test = task(data.test, 5);
  Model m = load_model(o, true);
  new_head(m, o.seed, o.d_model);
  const double rss_start = run_memory::bytes("VmRSS");
  const bool all = o.all_tensors || o.method == "backprop-full";
  const auto fine_tuned = [all](const std::string& n) { return all || head_or_norm(n); };
  auto binding = m.bind<float>({.select = fine_tuned});
  const std::uint64_t trainable = binding.parameters().elements();
  std::uint64_t total = 0;
  for (const auto& p : m.parameters()) total += static_cast<std::uint64_t>(p.numel());

  fs::create_directories(o.out);
  // 20 test evaluations along the run (2 with --smoke, whose runs are CI's
  // check that they work: an evaluation costs more than the smoke run's steps).
  const std::uint64_t evaluations = o.smoke ? 2 : 20;
  Curve curve{std::ofstream(fs::path(o.out) / ("curve_" + o.label() + ".csv")), &test, &m,
              std::max<std::uint64_t>(1, o.passes / evaluations), 0};
  // A resized model is random: no test evaluations, memory figures only.
  if (o.resized()) curve.next = std::numeric_limits<std::uint64_t>::max();
  curve.csv << "step,forward_passes,seconds,train_loss,test_loss,test_accuracy\n";
  curve.point(0, 0, 0.0, std::nan(""));
  curve.eval_seconds = 0.0;  // the clock starts after this evaluation
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  std::uint64_t steps = 0;
  std::uint64_t passes = 0;
  double state_bytes = 0.0;
  zoopt::ProgressBar bar(o.label());

  if (o.method == "backprop" || o.method == "backprop-full") {
    // Autograd needs requires_grad only on the tensors being trained.
    for (auto& [name, t] : m.named()) {
      t.set_requires_grad(fine_tuned(name));
    }
    torch::optim::Adam adam(binding.tensors(), torch::optim::AdamOptions(o.lr_or(1e-3)));
    state_bytes = 3.0 * 4.0 * static_cast<double>(trainable);  // gradient + two moments
    bar.on_begin(o.passes);
    for (; passes < o.passes; ++steps, ++passes) {
      const torch::Tensor rows = batch_rows(train, o.seed, steps);
      adam.zero_grad();
      const torch::Tensor loss = torch::nn::functional::cross_entropy(
          m(train.x.index_select(0, rows)), train.y.index_select(0, rows));
      loss.backward();
      adam.step();
      bar.on_step({steps, o.passes, steps + 1, loss.item<double>(), passes + 1, seconds()});
      curve.point(steps + 1, passes + 1, seconds(), loss.item<double>());
    }
  } else {
    for (const auto& p : m.parameters()) p.set_requires_grad(false);
    auto run = [&](auto& opt) {
      auto loss = binding.loss([&] {
        const torch::Tensor rows = batch_rows(train, o.seed, opt.step_count());
        return torch::nn::functional::cross_entropy(m(train.x.index_select(0, rows)),
                                                    train.y.index_select(0, rows))
            .template item<double>();
      });
      struct Track {
        Curve* c;
        void on_step(const zoopt::StepReport& r) {
          c->point(r.step, r.forward_passes, r.seconds, r.loss);
        }
      };
      using Opt = std::remove_reference_t<decltype(opt)>;
      const auto n =
          static_cast<std::size_t>(o.passes / Opt::evaluations_per_step(opt.params().directions));
      const auto r = opt.optimize(loss, binding.parameters(), n, bar, Track{&curve});
      steps = r.steps;
      passes = r.forward_passes;
    };
    if (o.method == "mezo") {
      zoopt::MeZO<float> opt({.lr = o.lr_or(2e-3), .eps = 1e-3, .seed = o.seed});
      run(opt);
    } else if (o.method == "fzoo") {
      zoopt::FZOO<float> opt({.lr = o.lr_or(8e-3), .eps = 1e-3, .directions = 8, .seed = o.seed});
      run(opt);
    } else {
      throw std::invalid_argument("unknown --method '" + o.method + "'");
    }
  }
  const double wall = seconds() - curve.eval_seconds;
  const auto [acc, loss] = o.resized() ? std::pair{std::nan(""), std::nan("")} : evaluate(m, test);
  const double peak_growth = run_memory::bytes("VmHWM") - rss_start;
  std::printf("RESULT %s,%llu,%llu,%.2f,%.3f,%.4f,%.4f,%.2f,%.3f,%.3f,%.3f\n", o.label().c_str(),
              static_cast<unsigned long long>(steps), static_cast<unsigned long long>(passes), wall,
              1e3 * wall / static_cast<double>(steps), acc, loss, peak_growth / 1048576.0,
              4.0 * static_cast<double>(total) / 1048576.0,
              4.0 * static_cast<double>(trainable) / 1048576.0, state_bytes / 1048576.0);
  return 0;
}

int export_start(const Options& o) {
  if (o.torchscript.empty())
    throw std::invalid_argument("--phase export-start needs --torchscript");
  Model m = load_model(o, true);
  new_head(m, o.seed, o.d_model);
  const fs::path file = fs::path(o.out) / ("start_seed" + std::to_string(o.seed) + ".pt");
  m.script.save(file.string());
  std::printf("wrote %s: pre-trained TorchScript module with the new head of seed %llu\n",
              file.c_str(), static_cast<unsigned long long>(o.seed));
  return 0;
}

void usage() {
  std::printf(
      "zoopt_torch_transformer --phase pretrain|finetune|export-start|plot [--method "
      "backprop|backprop-full|mezo|fzoo]\n"
      "  [--passes N (default 9000)] [--out DIR] [--data DIR] [--torchscript FILE]\n"
      "  [--seed S] [--threads T (default 2)] [--lr X] [--all-tensors]\n"
      "  [--smoke (CI's check: 20 pre-training steps; 2 test evaluations per run, not 20)]\n"
      "  [--d-model D (default 96) --layers L (default 3): another size, randomly\n"
      "   initialised, for memory figures]\n"
      "Default lr: backprop 1e-3 (Adam), mezo 2e-3, fzoo 8e-3.\n"
      "See examples/torch/run.sh for the whole comparison.\n");
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "zoopt_torch_transformer: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--phase")
      o.phase = value();
    else if (a == "--method")
      o.method = value();
    else if (a == "--out")
      o.out = value();
    else if (a == "--data")
      o.data = value();
    else if (a == "--torchscript")
      o.torchscript = value();
    else if (a == "--passes")
      o.passes = std::stoull(value());
    else if (a == "--seed")
      o.seed = std::stoull(value());
    else if (a == "--threads")
      o.threads = std::stoi(value());
    else if (a == "--smoke")
      o.smoke = true;
    else if (a == "--lr") {
      o.lr = std::stod(value());
      if (!(o.lr > 0.0)) {
        std::fprintf(stderr, "zoopt_torch_transformer: --lr must be positive\n");
        return 2;
      }
    } else if (a == "--d-model")
      o.d_model = std::stoll(value());
    else if (a == "--layers")
      o.layers = std::stoll(value());
    else if (a == "--all-tensors")
      o.all_tensors = true;
    else if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else {
      std::fprintf(stderr, "zoopt_torch_transformer: unknown option '%s'\n", a.c_str());
      usage();
      return 2;
    }
  }
  if (o.d_model <= 0 || o.d_model % vit::Config{}.heads != 0 || o.layers <= 0 ||
      (o.resized() && !o.torchscript.empty())) {
    std::fprintf(stderr,
                 "zoopt_torch_transformer: --d-model must be a positive multiple of %lld and "
                 "--layers positive (not with --torchscript)\n",
                 static_cast<long long>(vit::Config{}.heads));
    return 2;
  }
  try {
    if (o.phase == "plot") {
      const std::size_t n = curves::plot(o.out,
                                         "zoopt_torch_transformer: fine-tuning a new head "
                                         "for Fashion-MNIST classes 5-9");
      std::printf("wrote %s/curves.svg (%zu curves)\n", o.out.c_str(), n);
      return 0;
    }
    torch::set_num_threads(o.threads);
    const fmnist::Dataset data = fmnist::load(o.data);
    if (o.phase == "pretrain") return pretrain(o, data);
    if (o.phase == "finetune") return finetune(o, data);
    if (o.phase == "export-start") return export_start(o);
    usage();
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zoopt_torch_transformer: %s\n", e.what());
    return 1;
  }
}
