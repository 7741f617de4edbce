// Saved-model file: bit-exact round trip, and clear errors for files that do
// not match the parameters or are not valid model files.
#include <catch2/catch.hpp>

#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "zoopt/learned/perturbation_model.hpp"

namespace {

namespace fs = std::filesystem;

std::string temp_file(const std::string& tag) {
  return (fs::temp_directory_path() / ("zoopt_learned_" + tag + ".zpnn")).string();
}

std::vector<unsigned char> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<unsigned char>& b) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// Three spans over one buffer: "w" (6), "b" (3), "out" (5).
struct Layout {
  std::vector<float> x = std::vector<float>(14, 0.5f);
  zoopt::ParameterSet<float> set;
  Layout() {
    set.add("w", std::span<float>(x.data(), 6));
    set.add("b", std::span<float>(x.data() + 6, 3));
    set.add("out", std::span<float>(x.data() + 9, 5));
  }
};

// A model whose weights are all random (including values that are not
// exactly representable in decimal, so a text round trip would show).
zoopt::PerturbationModel random_model(const zoopt::ParameterSet<float>& set) {
  zoopt::PerturbationModel m = zoopt::PerturbationModel::unit(set, 4);
  std::mt19937_64 g(77);
  for (std::size_t i = 0; i < m.size(); ++i) {
    std::array<double, 449> w{};
    for (double& v : w) v = std::ldexp(static_cast<double>(g() >> 11), -53) - 0.5;
    m.block(i).net.read_from(w);
  }
  return m;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

}  // namespace

TEST_CASE("learned: model file round trip is bit-exact", "[learned][file]") {
  Layout l;
  zoopt::PerturbationModel m = random_model(l.set);
  m.set_normaliser_size("b", 1.0 / 3.0);
  const std::string path = temp_file("roundtrip");
  m.save(path);
  const zoopt::PerturbationModel r = zoopt::PerturbationModel::load(path, l.set);
  REQUIRE(r.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(r.block(i).name == m.block(i).name);
    CHECK(r.block(i).elements == m.block(i).elements);
    CHECK(std::memcmp(&r.block(i).normaliser_size, &m.block(i).normaliser_size, 8) == 0);
    std::array<double, 449> a{};
    std::array<double, 449> b{};
    m.block(i).net.write_to(a);
    r.block(i).net.write_to(b);
    CHECK(std::memcmp(a.data(), b.data(), sizeof(a)) == 0);
  }
  // Saving the loaded model gives the same bytes.
  const std::string again = temp_file("roundtrip2");
  r.save(again);
  CHECK(read_bytes(path) == read_bytes(again));
  // Size: magic, version, body_len 20 + shape and count 16 + per block
  // (2 + name + 8 + 8 + 8 + 449*8) + CRC 4.
  CHECK(read_bytes(path).size() == 20 + 16 + 3 * (26 + 449 * 8) + (1 + 1 + 3) + 4);
  fs::remove(path);
  fs::remove(again);
}

TEST_CASE("learned: loading a model that does not match the parameters names the block",
          "[learned][file]") {
  Layout l;
  const std::string path = temp_file("mismatch");
  random_model(l.set).save(path);

  std::vector<float> y(14, 0.0f);
  SECTION("different name") {
    zoopt::ParameterSet<float> s;
    s.add("w", std::span<float>(y.data(), 6));
    s.add("bias", std::span<float>(y.data() + 6, 3));
    s.add("out", std::span<float>(y.data() + 9, 5));
    const std::string e = error_of([&] { (void)zoopt::PerturbationModel::load(path, s); });
    CHECK_THAT(e, Catch::Contains("'b'") && Catch::Contains("'bias'"));
    CHECK_THROWS_AS(zoopt::PerturbationModel::load(path, s), std::invalid_argument);
  }
  SECTION("different element count") {
    zoopt::ParameterSet<float> s;
    s.add("w", std::span<float>(y.data(), 6));
    s.add("b", std::span<float>(y.data() + 6, 4));
    s.add("out", std::span<float>(y.data() + 10, 4));
    const std::string e = error_of([&] { (void)zoopt::PerturbationModel::load(path, s); });
    CHECK_THAT(
        e, Catch::Contains("block 'b'") && Catch::Contains("3 elements") && Catch::Contains("4"));
  }
  SECTION("different order") {
    zoopt::ParameterSet<float> s;
    s.add("b", std::span<float>(y.data(), 3));
    s.add("w", std::span<float>(y.data() + 3, 6));
    s.add("out", std::span<float>(y.data() + 9, 5));
    const std::string e = error_of([&] { (void)zoopt::PerturbationModel::load(path, s); });
    CHECK_THAT(e, Catch::Contains("'w'") && Catch::Contains("position 0"));
  }
  SECTION("span missing from the set") {
    zoopt::ParameterSet<float> s;
    s.add("w", std::span<float>(y.data(), 6));
    s.add("b", std::span<float>(y.data() + 6, 3));
    const std::string e = error_of([&] { (void)zoopt::PerturbationModel::load(path, s); });
    CHECK_THAT(e, Catch::Contains("'out'"));
  }
  SECTION("extra span in the set") {
    zoopt::ParameterSet<float> s;
    std::vector<float> z(20, 0.0f);
    s.add("w", std::span<float>(z.data(), 6));
    s.add("b", std::span<float>(z.data() + 6, 3));
    s.add("out", std::span<float>(z.data() + 9, 5));
    s.add("extra", std::span<float>(z.data() + 14, 6));
    const std::string e = error_of([&] { (void)zoopt::PerturbationModel::load(path, s); });
    CHECK_THAT(e, Catch::Contains("'extra'"));
  }
  fs::remove(path);
}

TEST_CASE("learned: invalid model files are clear errors", "[learned][file]") {
  Layout l;
  const std::string path = temp_file("invalid");
  const std::string bad = temp_file("invalid_bad");
  random_model(l.set).save(path);
  const std::vector<unsigned char> good = read_bytes(path);
  using zoopt::ModelFileError;
  using zoopt::PerturbationModel;

  CHECK_THAT(error_of([&] { (void)PerturbationModel::load(temp_file("does_not_exist")); }),
             Catch::Contains("cannot open"));
  CHECK_THROWS_AS(PerturbationModel::load(temp_file("does_not_exist")), ModelFileError);

  SECTION("wrong magic") {
    std::vector<unsigned char> b = good;
    b[0] = 'X';
    write_bytes(bad, b);
    CHECK_THROWS_AS(PerturbationModel::load(bad), ModelFileError);
    CHECK_THAT(error_of([&] { (void)PerturbationModel::load(bad); }), Catch::Contains("magic"));
  }
  SECTION("unsupported version") {
    std::vector<unsigned char> b = good;
    b[8] = 3;  // version is the u32 after the magic
    write_bytes(bad, b);
    CHECK_THAT(error_of([&] { (void)PerturbationModel::load(bad); }),
               Catch::Contains("unsupported format version 3 (this zoopt reads 1 to 2)"));
  }
  SECTION("truncated anywhere") {
    for (const std::size_t n : {std::size_t{0}, std::size_t{5}, std::size_t{20}, std::size_t{40},
                                good.size() / 2, good.size() - 9, good.size() - 1}) {
      write_bytes(bad, std::vector<unsigned char>(good.begin(),
                                                  good.begin() + static_cast<std::ptrdiff_t>(n)));
      INFO("truncated to " << n << " bytes");
      CHECK_THROWS_AS(PerturbationModel::load(bad), ModelFileError);
      CHECK_THAT(error_of([&] { (void)PerturbationModel::load(bad); }),
                 Catch::Contains("truncated"));
    }
  }
  SECTION("a flipped bit in the weights") {
    std::vector<unsigned char> b = good;
    b[good.size() / 2] ^= 0x10;
    write_bytes(bad, b);
    CHECK_THAT(error_of([&] { (void)PerturbationModel::load(bad); }),
               Catch::Contains("CRC mismatch"));
  }
  SECTION("bytes after the checksum") {
    std::vector<unsigned char> b = good;
    b.push_back(0);
    write_bytes(bad, b);
    CHECK_THAT(error_of([&] { (void)PerturbationModel::load(bad); }),
               Catch::Contains("unexpected bytes"));
  }
  SECTION("a model file is a FormatError like a log or a checkpoint") {
    std::vector<unsigned char> b = good;
    b[0] = 'X';
    CHECK_THROWS_AS(PerturbationModel::deserialize(b), zoopt::FormatError);
  }
  fs::remove(path);
  fs::remove(bad);
}

// tests/learned/data/model_v1.zopn was written by the version-1 writer (an
// FNV-1a hash, no body length): block "layer.weight" (12 elements,
// normaliser size 6, PertNN::unit() with b2 = 1.5) and "layer.bias" (3,
// PertNN::unit()). Such files keep loading, and save again as version 2.
TEST_CASE("learned: version-1 model files still load", "[learned][file]") {
  const std::vector<unsigned char> v1 = read_bytes(ZOOPT_TEST_DATA "/model_v1.zopn");
  REQUIRE(v1.size() == 7298);
  const auto m = zoopt::PerturbationModel::deserialize(v1);
  REQUIRE(m.size() == 2);
  zoopt::PertNN weight = zoopt::PertNN::unit();
  weight.b2 = 1.5;
  std::array<double, zoopt::PertNN::parameter_count> want{}, got{};
  weight.write_to(want);
  m.block(0).net.write_to(got);
  CHECK(m.block(0).name == "layer.weight");
  CHECK(m.block(0).elements == 12);
  CHECK(m.block(0).normaliser_size == 6.0);
  CHECK(std::memcmp(want.data(), got.data(), sizeof want) == 0);
  zoopt::PertNN::unit().write_to(want);
  m.block(1).net.write_to(got);
  CHECK(m.block(1).name == "layer.bias");
  CHECK(m.block(1).elements == 3);
  CHECK(std::memcmp(want.data(), got.data(), sizeof want) == 0);

  // Saved again: version 2 (a CRC frame), the same model.
  const auto v2 = m.serialize();
  CHECK(v2[8] == 2);
  // + body_len (8), u16 instead of u32 name lengths (-2 each), CRC-32 instead of
  // the 64-bit hash (-4).
  CHECK(v2.size() == v1.size() + 8 - 2 * 2 - 4);
  CHECK(zoopt::PerturbationModel::deserialize(v2).serialize() == v2);

  // Version 1's own checks: its hash, nothing after it, truncation.
  auto flipped = v1;
  flipped[v1.size() / 2] ^= 0x10;
  CHECK_THROWS_WITH(zoopt::PerturbationModel::deserialize(flipped),
                    Catch::Contains("checksum (FNV-1a) mismatch"));
  auto longer = v1;
  longer.push_back(0);
  CHECK_THROWS_WITH(zoopt::PerturbationModel::deserialize(longer),
                    Catch::Contains("unexpected bytes after the checksum"));
  const std::vector<unsigned char> cut(v1.begin(), v1.end() - 9);
  CHECK_THROWS_WITH(zoopt::PerturbationModel::deserialize(cut), Catch::Contains("truncated"));
}

TEST_CASE("learned: PerturbationModel rejects invalid blocks", "[learned][file]") {
  zoopt::PerturbationModel m;
  m.add_block("a", 4, zoopt::PertNN::unit());
  CHECK_THROWS_WITH(m.add_block("a", 2, zoopt::PertNN::unit()), Catch::Contains("'a'"));
  CHECK_THROWS_AS(m.add_block("", 2, zoopt::PertNN::unit()), std::invalid_argument);
  CHECK_THROWS_WITH(m.add_block("z", 0, zoopt::PertNN::unit()), Catch::Contains("elements"));
  zoopt::PertNN nan = zoopt::PertNN::unit();
  nan.b2 = std::nan("");
  CHECK_THROWS_WITH(m.add_block("n", 2, nan), Catch::Contains("non-finite"));
  CHECK_THROWS_WITH(m.set_normaliser_size("a", -1.0), Catch::Contains("'a'"));
  CHECK_THROWS_WITH(m.set_normaliser_size("nope", 1.0), Catch::Contains("'nope'"));
  CHECK(m.size() == 1);
}
