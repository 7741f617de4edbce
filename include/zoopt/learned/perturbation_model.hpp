// The learned part of the ZO Fine-tuner: one PertNN per block (span) of a
// parameter set, the per-block sizes of the normaliser, and the saved-model
// file format.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "zoopt/core/error.hpp"
#include "zoopt/core/fp_contract.hpp"
#include "zoopt/core/storage.hpp"
#include "zoopt/learned/pert_nn.hpp"
#include "zoopt/params/parameter_set.hpp"

ZOOPT_FP_CONTRACT_OFF_BEGIN

namespace zoopt {

/// Thrown when a saved-model file cannot be opened, read or written, or is
/// not a valid zoopt perturbation-model file (wrong magic, unsupported
/// version, truncated, checksum mismatch, bad field).
class ModelFileError : public StdError<std::runtime_error> {
 public:
  using StdError<std::runtime_error>::StdError;
};

/// The learned networks of a ZO Fine-tuner: one PertNN per block, in the
/// order of the spans of the parameter set it was built for, keyed by the
/// span's name and element count.
///
/// Each block also carries the size d_i it counts with in the normaliser
///   c = sqrt( sum_i d_i / sum_i d_i s_i^2 )
/// (its element count unless overridden with set_normaliser_size(), e.g. the
/// rows an embedding table touches per batch).
///
/// Memory: 449 doubles (3.5 KiB) per block plus its name.
///
/// Saved-model file (all integers and doubles little-endian; version 1):
///
///     char[8]  magic "ZOOPTPNN"
///     u32      version (1)
///     u32      inputs per network (5)
///     u32      hidden width (64)
///     u64      block count B
///     B times:
///       u32    name length n (1 .. 4096)
///       u8[n]  name (the span's name, no terminator)
///       u64    element count of the span
///       f64    normaliser size d_i
///       u64    weight count (449)
///       f64[449] weights: W1 row-major (64 x 5), b1 (64), w2 (64), b2
///     u64      FNV-1a 64-bit hash of every preceding byte
///
/// Nothing may follow the hash. Doubles are stored as their bit patterns, so
/// save() followed by load() is bit-exact.
class PerturbationModel {
 public:
  /// One block: the span it belongs to and its network.
  struct Block {
    std::string name;
    std::uint64_t elements = 0;
    double normaliser_size = 0.0;  ///< d_i in the normaliser (default: elements)
    PertNN net;
  };

  static constexpr char magic[8] = {'Z', 'O', 'O', 'P', 'T', 'P', 'N', 'N'};
  static constexpr std::uint32_t version = 1;

  PerturbationModel() = default;

  /// A model whose networks all output exactly 1 (see PertNN::unit): the
  /// ZO Fine-tuner with it is MeZO, bit for bit. Block i's hidden layer is
  /// drawn from (seed, i). This is also where meta-training starts.
  template <class T>
  static PerturbationModel unit(const ParameterSet<T>& params, std::uint64_t seed = 0) {
    detail::require(!params.empty(), "PerturbationModel::unit", "params",
                    "must hold at least one span");
    PerturbationModel m;
    for (std::size_t i = 0; i < params.size(); ++i) {
      m.add_block(params.name(i), params.span(i).size(),
                  PertNN::unit(seed, static_cast<std::uint32_t>(i)));
    }
    return m;
  }

  /// Appends a block. Throws std::invalid_argument if the name is empty or
  /// already used, the element count is 0 or a weight is not finite.
  PerturbationModel& add_block(std::string name, std::uint64_t elements, const PertNN& net) {
    detail::require(!name.empty(), "PerturbationModel::add_block", "name", "must not be empty");
    detail::require(name.size() <= max_name_length, "PerturbationModel::add_block", "name",
                    "must be at most 4096 bytes");
    for (const Block& b : blocks_) {
      detail::require(b.name != name, "PerturbationModel::add_block", "name",
                      "'" + name + "' is already a block");
    }
    detail::require(elements > 0, "PerturbationModel::add_block", "elements",
                    "(block '" + name + "') must be > 0");
    detail::require(net.finite(), "PerturbationModel::add_block", "net",
                    "(block '" + name + "') has a non-finite weight");
    blocks_.push_back(Block{std::move(name), elements, static_cast<double>(elements), net});
    return *this;
  }

  [[nodiscard]] std::size_t size() const noexcept { return blocks_.size(); }
  [[nodiscard]] bool empty() const noexcept { return blocks_.empty(); }
  [[nodiscard]] const Block& block(std::size_t i) const { return blocks_.at(i); }
  [[nodiscard]] Block& block(std::size_t i) { return blocks_.at(i); }
  [[nodiscard]] std::span<const Block> blocks() const noexcept { return blocks_; }

  /// Index of the block called `name`; throws std::invalid_argument if absent.
  [[nodiscard]] std::size_t index_of(const std::string& name) const {
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
      if (blocks_[i].name == name) return i;
    }
    throw InvalidArgument("PerturbationModel: no block named '" + name + "'");
  }

  /// Overrides d_i of block `name` in the normaliser (must be finite, > 0).
  void set_normaliser_size(const std::string& name, double d) {
    const std::size_t i = index_of(name);
    detail::require(std::isfinite(d) && d > 0.0, "PerturbationModel::set_normaliser_size", "d",
                    "(block '" + name + "') must be finite and > 0");
    blocks_[i].normaliser_size = d;
  }

  /// Throws std::invalid_argument naming the first block whose name,
  /// element count or position differs from the parameter set's spans.
  template <class T>
  void check_matches(const ParameterSet<T>& params, const char* where = "PerturbationModel") const {
    for (std::size_t i = 0; i < std::max(blocks_.size(), params.size()); ++i) {
      if (i >= blocks_.size()) {
        throw InvalidArgument(std::string(where) + ": parameter span '" + params.name(i) +
                              "' (position " + std::to_string(i) +
                              ") has no block in the model (model has " +
                              std::to_string(blocks_.size()) + " blocks)");
      }
      const Block& b = blocks_[i];
      if (i >= params.size()) {
        throw InvalidArgument(std::string(where) + ": model block '" + b.name + "' (position " +
                              std::to_string(i) + ") has no span in the parameter set (set has " +
                              std::to_string(params.size()) + " spans)");
      }
      if (b.name != params.name(i)) {
        throw InvalidArgument(std::string(where) + ": model block '" + b.name + "' at position " +
                              std::to_string(i) + " does not match parameter span '" +
                              params.name(i) + "'");
      }
      if (b.elements != params.span(i).size()) {
        throw InvalidArgument(std::string(where) + ": block '" + b.name + "' has " +
                              std::to_string(b.elements) + " elements in the model but " +
                              std::to_string(params.span(i).size()) + " in the parameter set");
      }
    }
  }

  /// As check_matches(ParameterSet) for bare views (no names: count and
  /// sizes only).
  template <class T>
  void check_matches(std::span<const SpanView<T>> views, const char* where) const {
    if (views.size() != blocks_.size()) {
      throw InvalidArgument(std::string(where) + ": the model has " +
                            std::to_string(blocks_.size()) + " blocks but the parameters " +
                            std::to_string(views.size()) + " spans");
    }
    for (std::size_t i = 0; i < views.size(); ++i) {
      if (views[i].size != blocks_[i].elements) {
        throw InvalidArgument(std::string(where) + ": block '" + blocks_[i].name + "' has " +
                              std::to_string(blocks_[i].elements) +
                              " elements in the model but span " + std::to_string(i) + " has " +
                              std::to_string(views[i].size));
      }
    }
  }

  /// Per-block scales s_i from the networks and the block statistics, and
  /// the normaliser c (1 when `normalise` is false). Reads every parameter
  /// once. `previous` holds s_{t-1} per block; `caches`, if not empty, receives
  /// each network's forward cache (for meta-training). Throws
  /// std::domain_error naming the block if a network's output is not finite,
  /// or if every scale is 0 with normalisation on. Allocates nothing.
  template <class T>
  double scales(std::span<const SpanView<T>> views, double loss_plus, double loss_minus,
                std::span<const double> previous, std::span<double> out, bool normalise,
                std::span<PertNN::Cache> caches = {}) const {
    double num = 0.0;
    double den = 0.0;
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
      const BlockStats st = block_stats(std::span<const T>(views[i].data, views[i].size));
      if (!std::isfinite(st.mean) || !std::isfinite(st.variance)) {
        throw_if_non_finite(i, std::span<const T>(views[i].data, views[i].size));
      }
      const PertFeatures x = pert_features(st, loss_plus, loss_minus, previous[i]);
      const double s =
          caches.empty() ? blocks_[i].net.forward(x) : blocks_[i].net.forward(x, caches[i]);
      if (!std::isfinite(s)) {
        throw DomainError("PerturbationModel: the network of block '" + blocks_[i].name +
                          "' returned a non-finite scale (" + std::to_string(s) + ")");
      }
      out[i] = s;
      num += blocks_[i].normaliser_size;
      den += blocks_[i].normaliser_size * s * s;
    }
    if (!normalise) return 1.0;
    if (!(den > 0.0) || !std::isfinite(den)) {
      throw DomainError("PerturbationModel: the normaliser sum_i d_i s_i^2 is " +
                        std::to_string(den) +
                        "; every block's scale is 0 (or overflowed), so c is undefined");
    }
    return std::sqrt(num / den);
  }

  /// Writes the model to `path` (format above). Throws ModelFileError if the
  /// file cannot be written.
  void save(const std::string& path) const {
    const std::vector<unsigned char> buf = serialize();
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f) throw ModelFileError("PerturbationModel::save: cannot open '" + path + "' for writing");
    f.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
    f.close();
    if (!f) throw ModelFileError("PerturbationModel::save: writing '" + path + "' failed");
  }

  /// The file image save() writes (format above).
  [[nodiscard]] std::vector<unsigned char> serialize() const {
    std::vector<unsigned char> buf;
    buf.insert(buf.end(), magic, magic + 8);
    put_u32(buf, version);
    put_u32(buf, PertNN::inputs);
    put_u32(buf, PertNN::hidden);
    put_u64(buf, blocks_.size());
    std::array<double, PertNN::parameter_count> w{};
    for (const Block& b : blocks_) {
      put_u32(buf, static_cast<std::uint32_t>(b.name.size()));
      buf.insert(buf.end(), b.name.begin(), b.name.end());
      put_u64(buf, b.elements);
      put_f64(buf, b.normaliser_size);
      put_u64(buf, PertNN::parameter_count);
      b.net.write_to(w);
      for (const double v : w) put_f64(buf, v);
    }
    put_u64(buf, fnv1a(buf));
    return buf;
  }

  /// Parses a file image as load() does; `source` names it in messages.
  /// Throws ModelFileError naming what is wrong.
  static PerturbationModel deserialize(std::span<const unsigned char> bytes,
                                       const std::string& source = "<memory>") {
    return parse(bytes, source);
  }

  /// Reads a model saved by save(). Throws ModelFileError naming what is
  /// wrong (unreadable file, wrong magic, unsupported version, truncation,
  /// checksum mismatch, invalid field).
  static PerturbationModel load(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw ModelFileError("PerturbationModel::load: cannot open '" + path + "'");
    const std::vector<unsigned char> buf((std::istreambuf_iterator<char>(f)),
                                         std::istreambuf_iterator<char>());
    if (f.bad()) throw ModelFileError("PerturbationModel::load: reading '" + path + "' failed");
    return parse(buf, path);
  }

  /// As load(path), then check_matches(params): a file whose blocks do not
  /// match the parameter set (name, element count, order) is an
  /// std::invalid_argument naming the block.
  template <class T>
  static PerturbationModel load(const std::string& path, const ParameterSet<T>& params) {
    PerturbationModel m = load(path);
    m.check_matches(params, ("PerturbationModel::load('" + path + "')").c_str());
    return m;
  }

 private:
  static constexpr std::size_t max_name_length = 4096;

  // The cause of non-finite block statistics, named: a NaN/Inf parameter.
  // (Finite parameters whose statistics overflow fall through to the
  // network's non-finite-output error.)
  template <class T>
  void throw_if_non_finite(std::size_t block, std::span<const T> x) const {
    for (std::size_t k = 0; k < x.size(); ++k) {
      const auto v = static_cast<double>(static_cast<compute_t<T>>(x[k]));
      if (std::isfinite(v)) continue;
      throw NonFiniteParameters("zoopt: the parameters of block '" + blocks_[block].name +
                                "' hold a non-finite value before the step (element " +
                                std::to_string(k) + " is " + std::to_string(v) +
                                "), so its network's inputs (mean, variance) are undefined; "
                                "parameters unchanged");
    }
  }

  static void put_u32(std::vector<unsigned char>& b, std::uint32_t v) {
    for (int k = 0; k < 4; ++k) b.push_back(static_cast<unsigned char>(v >> (8 * k)));
  }
  static void put_u64(std::vector<unsigned char>& b, std::uint64_t v) {
    for (int k = 0; k < 8; ++k) b.push_back(static_cast<unsigned char>(v >> (8 * k)));
  }
  static void put_f64(std::vector<unsigned char>& b, double v) {
    put_u64(b, std::bit_cast<std::uint64_t>(v));
  }
  static std::uint64_t fnv1a(std::span<const unsigned char> bytes) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char c : bytes) {
      h ^= c;
      h *= 0x100000001b3ull;
    }
    return h;
  }

  class Reader {
   public:
    Reader(std::span<const unsigned char> b, const std::string& path) : b_(b), path_(path) {}
    void need(std::size_t n, const std::string& what) const {
      if (b_.size() - at_ < n) {
        throw ModelFileError("PerturbationModel::load('" + path_ + "'): file truncated at byte " +
                             std::to_string(b_.size()) + " while reading " + what);
      }
    }
    std::uint64_t uint(int bytes, const std::string& what) {
      need(static_cast<std::size_t>(bytes), what);
      std::uint64_t v = 0;
      for (int k = 0; k < bytes; ++k) v |= static_cast<std::uint64_t>(b_[at_ + k]) << (8 * k);
      at_ += static_cast<std::size_t>(bytes);
      return v;
    }
    double f64(const std::string& what) { return std::bit_cast<double>(uint(8, what)); }
    std::string text(std::size_t n, const std::string& what) {
      need(n, what);
      std::string s(reinterpret_cast<const char*>(b_.data() + at_), n);
      at_ += n;
      return s;
    }
    [[nodiscard]] std::size_t at() const { return at_; }
    [[nodiscard]] std::size_t left() const { return b_.size() - at_; }

   private:
    std::span<const unsigned char> b_;
    std::string path_;
    std::size_t at_ = 0;
  };

  static PerturbationModel parse(std::span<const unsigned char> buf, const std::string& path) {
    const std::string where = "PerturbationModel::load('" + path + "'): ";
    Reader r(buf, path);
    const std::string m = r.text(8, "the magic");
    if (m != std::string(magic, 8)) {
      throw ModelFileError(where + "not a zoopt perturbation-model file (bad magic)");
    }
    const auto ver = static_cast<std::uint32_t>(r.uint(4, "the version"));
    if (ver != version) {
      throw ModelFileError(where + "unsupported format version " + std::to_string(ver) +
                           " (this zoopt reads version " + std::to_string(version) + ")");
    }
    const auto inputs = r.uint(4, "the input count");
    const auto hidden = r.uint(4, "the hidden width");
    if (inputs != PertNN::inputs || hidden != PertNN::hidden) {
      throw ModelFileError(where + "network shape " + std::to_string(inputs) + " -> " +
                           std::to_string(hidden) + " is not PertNN's 5 -> 64");
    }
    const std::uint64_t count = r.uint(8, "the block count");
    if (count == 0) throw ModelFileError(where + "block count is 0");
    PerturbationModel model;
    std::array<double, PertNN::parameter_count> w{};
    for (std::uint64_t i = 0; i < count; ++i) {
      const std::string tag = "block " + std::to_string(i);
      const auto len = r.uint(4, "the name length of " + tag);
      if (len == 0 || len > max_name_length) {
        throw ModelFileError(where + "invalid name length " + std::to_string(len) + " of " + tag);
      }
      std::string name = r.text(len, "the name of " + tag);
      const std::string btag = "block '" + name + "'";
      const std::uint64_t elements = r.uint(8, "the element count of " + btag);
      const double d = r.f64("the normaliser size of " + btag);
      const std::uint64_t nw = r.uint(8, "the weight count of " + btag);
      if (nw != PertNN::parameter_count) {
        throw ModelFileError(where + btag + " has " + std::to_string(nw) + " weights, expected " +
                             std::to_string(PertNN::parameter_count));
      }
      const std::string wtag = "the weights of " + btag;
      for (double& v : w) v = r.f64(wtag);
      PertNN net;
      net.read_from(w);
      model.blocks_.push_back(Block{std::move(name), elements, d, net});
    }
    // Structure first (so that a short file is reported as truncated), then
    // the hash over everything before it (so that flipped bits are caught).
    r.uint(8, "the checksum");
    if (r.left() != 0) {
      throw ModelFileError(where + std::to_string(r.left()) +
                           " unexpected bytes after the checksum");
    }
    if (!fnv_ok(buf)) {
      throw ModelFileError(where + "checksum mismatch: the file is corrupt");
    }
    for (std::size_t i = 0; i < model.blocks_.size(); ++i) {
      const Block& b = model.blocks_[i];
      const std::string btag = "block '" + b.name + "'";
      if (b.elements == 0) throw ModelFileError(where + btag + " has 0 elements");
      if (!(std::isfinite(b.normaliser_size) && b.normaliser_size > 0.0)) {
        throw ModelFileError(where + btag + " has an invalid normaliser size");
      }
      if (!b.net.finite()) throw ModelFileError(where + btag + " has a non-finite weight");
      for (std::size_t j = 0; j < i; ++j) {
        if (model.blocks_[j].name == b.name) throw ModelFileError(where + btag + " appears twice");
      }
    }
    return model;
  }

  static bool fnv_ok(std::span<const unsigned char> buf) {
    if (buf.size() < 8) return false;
    std::uint64_t stored = 0;
    for (int k = 0; k < 8; ++k) {
      stored |= static_cast<std::uint64_t>(buf[buf.size() - 8 + static_cast<std::size_t>(k)])
                << (8 * k);
    }
    return fnv1a(buf.first(buf.size() - 8)) == stored;
  }

  std::vector<Block> blocks_;
};

}  // namespace zoopt

ZOOPT_FP_CONTRACT_OFF_END
