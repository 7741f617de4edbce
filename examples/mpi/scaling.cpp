// Scaling KerZOO out over MPI: a one-hidden-layer MLP on Fashion-MNIST (or
// synthetic data), trained with direction-parallel and data-parallel steps.
// Prints the wall time and the bytes exchanged per step.
//
//   mpirun -np 2 zoopt_mpi_scaling                     # both modes, Fashion-MNIST
//   mpirun -np 1 zoopt_mpi_scaling                     # the same on one rank
//   zoopt_mpi_scaling --mode plain                     # no MPI driver at all
//
// Options: --mode directions|data|both|plain (both), --steps N (20),
// --directions n (4), --batch B (512, the global batch), --hidden H (64),
// --data DIR|synthetic (/usr/share/datasets/fashion-mnist; synthetic if the
// files are missing), --quiet (summary lines only).
#include <Eigen/Dense>
#include <zoopt/kerzoo.hpp>
#include <zoopt/mpi.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr std::size_t kInputs = 784;
constexpr std::size_t kClasses = 10;

// CPU time of this process (all its threads), in seconds.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double uniform(std::uint64_t key) {  // [-1, 1)
  return 2.0 * static_cast<double>(mix64(key) >> 11) * 0x1.0p-53 - 1.0;
}

struct Data {
  std::vector<float> x;  // rows of kInputs values in [0, 1]
  std::vector<std::uint8_t> y;
  std::size_t rows = 0;
  std::string source;
};

std::vector<unsigned char> gunzip(const std::string& path) {
  const std::string command = "gzip -dc '" + path + "'";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot run " + command);
  std::vector<unsigned char> bytes;
  unsigned char buffer[1 << 16];
  std::size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) {
    bytes.insert(bytes.end(), buffer, buffer + got);
  }
  if (pclose(pipe) != 0) throw std::runtime_error("failed to decompress " + path);
  return bytes;
}

std::uint32_t be32(const std::vector<unsigned char>& b, std::size_t at) {
  return std::uint32_t{b[at]} << 24 | std::uint32_t{b[at + 1]} << 16 |
         std::uint32_t{b[at + 2]} << 8 | std::uint32_t{b[at + 3]};
}

Data load_fashion(const std::string& dir) {
  const auto images = gunzip(dir + "/train-images-idx3-ubyte.gz");
  const auto labels = gunzip(dir + "/train-labels-idx1-ubyte.gz");
  if (images.size() < 16 || be32(images, 0) != 2051 || labels.size() < 8 ||
      be32(labels, 0) != 2049) {
    throw std::runtime_error("not Fashion-MNIST IDX files in " + dir);
  }
  Data d;
  d.rows = std::min<std::size_t>(be32(images, 4), be32(labels, 4));
  d.x.resize(d.rows * kInputs);
  for (std::size_t i = 0; i < d.x.size(); ++i) d.x[i] = images[16 + i] / 255.0f;
  d.y.assign(labels.begin() + 8, labels.begin() + 8 + static_cast<std::ptrdiff_t>(d.rows));
  d.source = "Fashion-MNIST (" + dir + ")";
  return d;
}

// Labels from a fixed random linear teacher: learnable, deterministic.
Data make_synthetic(std::size_t rows) {
  Data d;
  d.rows = rows;
  d.x.resize(rows * kInputs);
  d.y.resize(rows);
  for (std::size_t i = 0; i < d.x.size(); ++i) d.x[i] = static_cast<float>(0.5 + 0.5 * uniform(i));
  for (std::size_t r = 0; r < rows; ++r) {
    double best = -1e300;
    for (std::size_t c = 0; c < kClasses; ++c) {
      double s = 0.0;
      for (std::size_t j = 0; j < kInputs; ++j) {
        s += uniform((1ULL << 40) + c * kInputs + j) * d.x[r * kInputs + j];
      }
      if (s > best) {
        best = s;
        d.y[r] = static_cast<std::uint8_t>(c);
      }
    }
  }
  d.source = "synthetic (linear teacher)";
  return d;
}

// 784 -> hidden (tanh) -> 10, cross-entropy. Parameters in one buffer, four
// spans.
struct Mlp {
  std::size_t hidden;
  std::vector<float> weights;
  zoopt::ParameterSet<float> params;

  explicit Mlp(std::size_t h) : hidden(h), weights(h * kInputs + h + kClasses * h + kClasses) {
    float* w = weights.data();
    const std::size_t w2 = h * kInputs + h;
    params.add("fc1.weight", {w, h * kInputs});
    params.add("fc1.bias", {w + h * kInputs, h}, {.weight_decay = false});
    params.add("fc2.weight", {w + w2, kClasses * h});
    params.add("fc2.bias", {w + w2 + kClasses * h, kClasses}, {.weight_decay = false});
    const double a1 = std::sqrt(6.0 / (kInputs + h));
    const double a2 = std::sqrt(6.0 / (h + kClasses));
    for (std::size_t i = 0; i < h * kInputs; ++i) w[i] = static_cast<float>(a1 * uniform(7 + i));
    for (std::size_t i = 0; i < kClasses * h; ++i) {
      w[w2 + i] = static_cast<float>(a2 * uniform((1ULL << 50) + i));
    }
  }
  Mlp(const Mlp&) = delete;
  Mlp& operator=(const Mlp&) = delete;

  // Mean cross-entropy over the rows of x (the real compute of a step).
  double loss(const Matrix& x, const std::vector<std::uint8_t>& y) const {
    const std::size_t h = hidden;
    const float* w = weights.data();
    Eigen::Map<const Matrix> w1(w, static_cast<Eigen::Index>(h), kInputs);
    Eigen::Map<const Eigen::RowVectorXf> b1(w + h * kInputs, static_cast<Eigen::Index>(h));
    Eigen::Map<const Matrix> w2(w + h * kInputs + h, kClasses, static_cast<Eigen::Index>(h));
    Eigen::Map<const Eigen::RowVectorXf> b2(w + h * kInputs + h + kClasses * h, kClasses);
    Matrix a = ((x * w1.transpose()).rowwise() + b1).array().tanh().matrix();
    Matrix z = (a * w2.transpose()).rowwise() + b2;
    double total = 0.0;
    for (Eigen::Index r = 0; r < z.rows(); ++r) {
      const float top = z.row(r).maxCoeff();
      const double lse = top + std::log((z.row(r).array() - top).exp().sum());
      total += lse - z(r, y[static_cast<std::size_t>(r)]);
    }
    return total / static_cast<double>(z.rows());
  }
};

// Rows [begin, end) of the global batch of step t (indices from a hash of
// (t, position), the same on every rank).
void fill_batch(const Data& d, std::uint64_t t, std::size_t batch, std::size_t begin,
                std::size_t end, Matrix& x, std::vector<std::uint8_t>& y) {
  x.resize(static_cast<Eigen::Index>(end - begin), kInputs);
  y.resize(end - begin);
  for (std::size_t j = begin; j < end; ++j) {
    const std::size_t row = mix64(t * batch + j + 0x5bd1e995ULL) % d.rows;
    std::copy_n(d.x.data() + row * kInputs, kInputs,
                x.data() + static_cast<std::ptrdiff_t>((j - begin) * kInputs));
    y[j - begin] = d.y[row];
  }
}

struct Settings {
  std::string mode = "both";
  std::size_t steps = 20;
  std::uint32_t directions = 4;
  std::size_t batch = 512;
  std::size_t hidden = 64;
  std::string data = "/usr/share/datasets/fashion-mnist";
  bool quiet = false;
};

Settings parse(int argc, char** argv) {
  Settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument("missing value after " + a);
      return argv[++i];
    };
    if (a == "--mode") {
      s.mode = value();
    } else if (a == "--steps") {
      s.steps = std::stoul(value());
    } else if (a == "--directions") {
      s.directions = static_cast<std::uint32_t>(std::stoul(value()));
    } else if (a == "--batch") {
      s.batch = std::stoul(value());
    } else if (a == "--hidden") {
      s.hidden = std::stoul(value());
    } else if (a == "--data") {
      s.data = value();
    } else if (a == "--quiet") {
      s.quiet = true;
    } else {
      throw std::invalid_argument("unknown option " + a);
    }
  }
  if (s.mode != "both" && s.mode != "data" && s.mode != "directions" && s.mode != "plain") {
    throw std::invalid_argument("--mode must be directions, data, both or plain");
  }
  if (s.steps == 0 || s.directions == 0 || s.batch == 0 || s.hidden == 0) {
    throw std::invalid_argument("--steps, --directions, --batch and --hidden must be > 0");
  }
  return s;
}

using Optimizer = zoopt::KerZOO<float>;

Optimizer::Params kerzoo_params(const Settings& s) {
  return {.lr = 2e-3, .eps = 1e-3, .directions = s.directions, .seed = 2024};
}

// Runs one mode; returns the mean wall time of a step (rank 0's clock).
double run(const Settings& s, const Data& data, const std::string& mode, int rank, int ranks) {
  Mlp model(s.hidden);
  Optimizer opt(kerzoo_params(s));
  const bool by_data = mode == "data";
  // Data parallelism splits the global batch into one shard per rank.
  const std::size_t begin = by_data ? s.batch * static_cast<std::size_t>(rank) / ranks : 0;
  const std::size_t end = by_data ? s.batch * static_cast<std::size_t>(rank + 1) / ranks : s.batch;
  Matrix x;
  std::vector<std::uint8_t> y;
  auto loss = [&] { return model.loss(x, y); };

  if (mode == "plain") {
    double total = 0.0;
    double fastest = 1e300;
    for (std::size_t t = 0; t < s.steps; ++t) {
      fill_batch(data, t, s.batch, begin, end, x, y);
      const double start = MPI_Wtime();
      const double value = opt.step(loss, model.params);
      const double seconds = MPI_Wtime() - start;
      total += seconds;
      fastest = std::min(fastest, seconds);
      if (!s.quiet)
        std::printf("plain       step %3zu  loss %.4f  %8.2f ms\n", t, value, 1e3 * seconds);
    }
    const double mean = total / static_cast<double>(s.steps);
    std::printf(
        "plain: 1 process, n=%u, batch %zu, d=%llu: %.2f ms per step, %llu loss "
        "evaluations per step\n",
        s.directions, s.batch, static_cast<unsigned long long>(model.params.elements()), 1e3 * mean,
        static_cast<unsigned long long>(opt.forward_passes() / s.steps));
    return mean;
  }

  zoopt::mpi::Distributed driver(opt, {.parallelism = by_data ? zoopt::mpi::Parallelism::data
                                                              : zoopt::mpi::Parallelism::directions,
                                       .check_every = 10});
  double total = 0.0;
  double fastest = 1e300;
  double cpu = 0.0;
  zoopt::mpi::Traffic typical;
  for (std::size_t t = 0; t < s.steps; ++t) {
    fill_batch(data, t, s.batch, begin, end, x, y);
    const double start = MPI_Wtime();
    const double cpu_start = cpu_seconds();
    const double value = driver.step(loss, model.params);
    const double seconds = MPI_Wtime() - start;
    cpu += cpu_seconds() - cpu_start;
    total += seconds;
    fastest = std::min(fastest, seconds);
    const zoopt::mpi::Traffic& traffic = driver.last_step_traffic();
    if (t == 1) typical = traffic;  // a step without a replica check
    if (rank == 0 && !s.quiet) {
      std::printf(
          "%-11s step %3zu  loss %.4f  %8.2f ms  (%.2f ms in exchanges)  sent %llu B  "
          "received %llu B\n",
          mode.c_str(), t, value, 1e3 * seconds, 1e3 * traffic.wait_seconds,
          static_cast<unsigned long long>(traffic.sent),
          static_cast<unsigned long long>(traffic.received));
    }
  }
  driver.check_replicas(model.params);
  const double mean = total / static_cast<double>(s.steps);
  const auto [first, last] = driver.my_directions(s.directions);
  if (rank == 0) {
    std::printf(
        "%s: %d rank(s), n=%u (rank 0 evaluates directions [%u, %u)), batch %zu%s, "
        "d=%llu: %.2f ms per step (fastest %.2f ms, rank 0 CPU %.2f ms), rank 0 evaluates %llu "
        "losses per step on %zu "
        "rows, payload per step (rank 0) sent %llu B, received %llu B; replicas identical "
        "(hash 0x%016llx)\n",
        mode.c_str(), ranks, s.directions, first, last, s.batch,
        by_data ? " (split across ranks)" : " (same on every rank)",
        static_cast<unsigned long long>(model.params.elements()), 1e3 * mean, 1e3 * fastest,
        1e3 * cpu / static_cast<double>(s.steps),
        static_cast<unsigned long long>(opt.forward_passes() / s.steps), end - begin,
        static_cast<unsigned long long>(typical.sent),
        static_cast<unsigned long long>(typical.received),
        static_cast<unsigned long long>(zoopt::mpi::parameter_hash<float>(model.params.views())));
  }
  return mean;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  int ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  int rc = 0;
  try {
    const Settings s = parse(argc, argv);
    const bool fashion =
        s.data != "synthetic" && std::filesystem::exists(s.data + "/train-images-idx3-ubyte.gz");
    const Data data = fashion ? load_fashion(s.data) : make_synthetic(4096);
    if (rank == 0) std::printf("data: %s, %zu rows\n", data.source.c_str(), data.rows);
    if (s.mode == "plain" && ranks != 1) throw std::invalid_argument("--mode plain needs 1 rank");
    if (s.mode == "both" || s.mode == "directions") run(s, data, "directions", rank, ranks);
    if (s.mode == "both" || s.mode == "data") run(s, data, "data", rank, ranks);
    if (s.mode == "plain") run(s, data, "plain", rank, ranks);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: %s\n", rank, e.what());
    rc = 1;
  }
  MPI_Finalize();
  return rc;
}
