// Fashion-MNIST reader for zoopt's demo and convergence suite. The data comes
// from the Debian package `dataset-fashion-mnist`, which installs the four
// IDX files (gzip-compressed) in /usr/share/datasets/fashion-mnist.
// Compressed files are read through `gzip -dc`, so no zlib is needed.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace fmnist {

/// Where the Debian package puts the files.
inline constexpr const char* kDefaultDir = "/usr/share/datasets/fashion-mnist";

/// Class names, index = label.
inline constexpr const char* kClassNames[10] = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                "Bag",         "Ankle boot"};

/// Images as floats in [0, 1], row-major (count x 784), and labels 0..9.
struct Split {
  std::size_t count = 0;
  std::size_t rows = 28;
  std::size_t cols = 28;
  std::vector<float> pixels;
  std::vector<std::uint8_t> labels;
  [[nodiscard]] std::size_t features() const { return rows * cols; }
  [[nodiscard]] const float* image(std::size_t i) const { return pixels.data() + i * features(); }
};

struct Dataset {
  Split train;
  Split test;
};

/// The data folder: `dir` if not empty, else $ZOOPT_FASHION_MNIST_DIR, else
/// the Debian location.
inline std::string data_dir(const std::string& dir = {}) {
  if (!dir.empty()) return dir;
  if (const char* env = std::getenv("ZOOPT_FASHION_MNIST_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  return kDefaultDir;
}

namespace detail {

inline std::string missing_message(const std::string& dir, const std::string& file) {
  return "Fashion-MNIST file '" + file + "' (or '" + file + ".gz') not found in '" + dir +
         "'.\nInstall the Debian package:  sudo apt-get install dataset-fashion-mnist\n"
         "(or point ZOOPT_FASHION_MNIST_DIR / --data at a folder holding the IDX files)";
}

/// Whole file contents, decompressing a .gz through gzip.
inline std::vector<unsigned char> read_file(const std::string& dir, const std::string& file) {
  namespace fs = std::filesystem;
  const fs::path plain = fs::path(dir) / file;
  const fs::path gz = fs::path(dir) / (file + ".gz");
  std::FILE* f = nullptr;
  bool piped = false;
  if (fs::exists(plain)) {
    f = std::fopen(plain.c_str(), "rb");
  } else if (fs::exists(gz)) {
    const std::string cmd = "gzip -dc '" + gz.string() + "'";
    f = ::popen(cmd.c_str(), "r");
    piped = true;
  } else {
    throw std::runtime_error(missing_message(dir, file));
  }
  if (f == nullptr) throw std::runtime_error("cannot open Fashion-MNIST file in '" + dir + "'");
  std::vector<unsigned char> out;
  unsigned char buf[1 << 16];
  std::size_t got = 0;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) out.insert(out.end(), buf, buf + got);
  const int rc = piped ? ::pclose(f) : std::fclose(f);
  if (rc != 0 || out.empty()) {
    throw std::runtime_error("could not read Fashion-MNIST file '" + file + "' in '" + dir +
                             "' (corrupt, or gzip missing?)");
  }
  return out;
}

inline std::uint32_t be32(const std::vector<unsigned char>& b, std::size_t at) {
  return (std::uint32_t{b[at]} << 24) | (std::uint32_t{b[at + 1]} << 16) |
         (std::uint32_t{b[at + 2]} << 8) | std::uint32_t{b[at + 3]};
}

inline Split read_split(const std::string& dir, const std::string& images,
                        const std::string& labels) {
  const auto im = read_file(dir, images);
  const auto lb = read_file(dir, labels);
  if (im.size() < 16 || be32(im, 0) != 0x803 || lb.size() < 8 || be32(lb, 0) != 0x801) {
    throw std::runtime_error("'" + images + "' / '" + labels + "' in '" + dir +
                             "' are not IDX image/label files");
  }
  Split s;
  s.count = be32(im, 4);
  s.rows = be32(im, 8);
  s.cols = be32(im, 12);
  if (be32(lb, 4) != s.count || im.size() != 16 + s.count * s.rows * s.cols ||
      lb.size() != 8 + s.count) {
    throw std::runtime_error("'" + images + "' and '" + labels + "' in '" + dir +
                             "' have inconsistent sizes");
  }
  s.pixels.resize(s.count * s.rows * s.cols);
  for (std::size_t i = 0; i < s.pixels.size(); ++i) s.pixels[i] = im[16 + i] / 255.0f;
  s.labels.assign(lb.begin() + 8, lb.end());
  return s;
}

}  // namespace detail

/// Loads both splits. Throws std::runtime_error naming the Debian package
/// when the files are missing.
inline Dataset load(const std::string& dir_option = {}) {
  const std::string dir = data_dir(dir_option);
  Dataset d;
  d.train = detail::read_split(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte");
  d.test = detail::read_split(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte");
  return d;
}

}  // namespace fmnist
