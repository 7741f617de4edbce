// The learned part of the ZO Fine-tuner: one PertNN per block (span) of a
// parameter set, the per-block sizes of the normaliser, and the saved-model
// file format.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "zoopt/core/binary_io.hpp"
#include "zoopt/core/error.hpp"
#include "zoopt/core/fp_contract.hpp"
#include "zoopt/core/storage.hpp"
#include "zoopt/learned/pert_nn.hpp"
#include "zoopt/params/parameter_set.hpp"

ZOOPT_FP_CONTRACT_OFF_BEGIN

namespace zoopt {

/// Thrown when a saved-model file cannot be opened, read or written, or is
/// not a valid zoopt perturbation-model file (wrong magic, unsupported
/// version, truncated, checksum mismatch, bad field). A FormatError, like
/// the errors of update logs and checkpoints.
class ModelFileError : public FormatError {
 public:
  using FormatError::FormatError;
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
/// Saved-model file (all integers and doubles little-endian; version 2),
/// framed like a checkpoint (core/binary_io.hpp):
///
///     char[8]  magic "ZOOPTPNN"
///     u32      version (2)
///     u64      body length
///     body:
///       u32    inputs per network (5)
///       u32    hidden width (64)
///       u64    block count B
///       B times:
///         u16    name length n (1 .. 4096) and u8[n] name (no terminator)
///         u64    element count of the span
///         f64    normaliser size d_i
///         u64    weight count (449)
///         f64[449] weights: W1 row-major (64 x 5), b1 (64), w2 (64), b2
///     u32      CRC-32 of every preceding byte
///
/// Nothing may follow the CRC. Doubles are stored as their bit patterns, so
/// save() followed by load() is bit-exact. load() also reads version 1
/// (no body length, u32 name lengths, a trailing FNV-1a 64-bit hash instead
/// of the CRC), the files of earlier zoopt releases.
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
  static constexpr std::uint32_t version = 2;

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
    detail::bin::write_file<ModelFileError>(path, serialize(), kind);
  }

  /// The file image save() writes (format above).
  [[nodiscard]] std::vector<unsigned char> serialize() const {
    detail::bin::Writer body;
    body.u32(PertNN::inputs);
    body.u32(PertNN::hidden);
    body.u64(blocks_.size());
    std::array<double, PertNN::parameter_count> w{};
    for (const Block& b : blocks_) {
      body.str(b.name, "block name");
      body.u64(b.elements);
      body.f64(b.normaliser_size);
      body.u64(PertNN::parameter_count);
      b.net.write_to(w);
      for (const double v : w) body.f64(v);
    }
    return detail::bin::framed(magic, version, body);
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
    return parse(detail::bin::read_file<ModelFileError>(path, kind), path);
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

  static constexpr const char* kind = "perturbation model";
  using Reader = detail::bin::Reader<ModelFileError>;

  static std::uint64_t fnv1a(std::span<const unsigned char> bytes) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char c : bytes) {
      h ^= c;
      h *= 0x100000001b3ULL;
    }
    return h;
  }

  static PerturbationModel parse(std::span<const unsigned char> buf, const std::string& path) {
    Reader r(buf, path, kind);
    const std::uint32_t ver = r.header(magic, kind, version, 1);
    // Version 2 checks its frame and CRC before the fields; version 1
    // reads its fields first, so that a short file is reported as
    // truncated, then its hash.
    const std::size_t body_end = ver >= 2 ? r.framed_body() : 0;
    const auto inputs = r.u32("the input count");
    const auto hidden = r.u32("the hidden width");
    if (inputs != PertNN::inputs || hidden != PertNN::hidden) {
      r.fail("network shape " + std::to_string(inputs) + " -> " + std::to_string(hidden) +
                 " is not PertNN's 5 -> 64",
             r.pos() - 8);
    }
    const std::uint64_t count = r.u64("the block count");
    if (count == 0) r.fail("block count is 0", r.pos() - 8);
    PerturbationModel model;
    std::array<double, PertNN::parameter_count> w{};
    for (std::uint64_t i = 0; i < count; ++i) {
      const std::size_t at = r.pos();
      std::string name;
      if (ver >= 2) {
        name = r.str("a block name");
      } else {
        const std::uint32_t len = r.u32("a block name length");
        if (len <= max_name_length) {
          name.resize(len);
          r.raw(name.data(), len, "a block name");
        }
      }
      if (name.empty() || name.size() > max_name_length) {
        r.fail("block " + std::to_string(i) + " has a name of invalid length", at);
      }
      const std::string tag = "block '" + name + "'";
      const std::uint64_t elements = r.u64("a block's element count");
      const double d = r.f64("a block's normaliser size");
      const std::uint64_t nw = r.u64("a block's weight count");
      if (nw != PertNN::parameter_count) {
        r.fail(tag + " has " + std::to_string(nw) + " weights, expected " +
                   std::to_string(PertNN::parameter_count),
               r.pos() - 8);
      }
      for (double& v : w) v = r.f64("a block's weights");
      PertNN net;
      net.read_from(w);
      if (elements == 0) r.fail(tag + " has 0 elements", at);
      if (!(std::isfinite(d) && d > 0.0)) r.fail(tag + " has an invalid normaliser size", at);
      if (!net.finite()) r.fail(tag + " has a non-finite weight", at);
      for (const Block& earlier : model.blocks_) {
        if (earlier.name == name) r.fail(tag + " appears twice", at);
      }
      model.blocks_.push_back(Block{std::move(name), elements, d, net});
    }
    if (ver >= 2) {
      if (r.pos() != body_end) {
        r.fail("corrupt file: body_len says " + std::to_string(body_end - 20) +
                   " bytes, fields use " + std::to_string(r.pos() - 20),
               20);
      }
      return model;
    }
    const std::size_t hash_at = r.pos();
    const std::uint64_t stored = r.u64("the checksum");
    if (r.remaining() != 0) r.fail("unexpected bytes after the checksum", r.pos());
    if (fnv1a(buf.first(hash_at)) != stored) {
      r.fail("corrupt file: checksum (FNV-1a) mismatch", hash_at);
    }
    return model;
  }

  std::vector<Block> blocks_;
};

}  // namespace zoopt

ZOOPT_FP_CONTRACT_OFF_END
