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
  // Size: header 28 + per block (4 + name + 8 + 8 + 8 + 449*8) + hash 8.
  CHECK(read_bytes(path).size() == 28 + 3 * (28 + 449 * 8) + (1 + 1 + 3) + 8);
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
    b[8] = 2;  // version is the u32 after the magic
    write_bytes(bad, b);
    CHECK_THAT(error_of([&] { (void)PerturbationModel::load(bad); }), Catch::Contains("version 2"));
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
    CHECK_THAT(error_of([&] { (void)PerturbationModel::load(bad); }), Catch::Contains("checksum"));
  }
  SECTION("bytes after the checksum") {
    std::vector<unsigned char> b = good;
    b.push_back(0);
    write_bytes(bad, b);
    CHECK_THAT(error_of([&] { (void)PerturbationModel::load(bad); }),
               Catch::Contains("unexpected bytes"));
  }
  fs::remove(path);
  fs::remove(bad);
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
