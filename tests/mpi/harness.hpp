// A minimal test harness for programs run under mpirun: every rank counts its
// checks, finish() sums the counts over the ranks and rank 0 prints
// "<name>: N passed, M failed". A failed check prints its rank, file and line.
#pragma once

#include <mpi.h>

#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <vector>

namespace zoopt_mpi_test {

struct Counts {
  long passed = 0;
  long failed = 0;
};

inline Counts& counts() {
  static Counts c;
  return c;
}

inline int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

inline int world_size() {
  int p = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &p);
  return p;
}

inline bool record(bool ok, const char* expr, const char* file, int line) {
  if (ok) {
    ++counts().passed;
  } else {
    ++counts().failed;
    std::fprintf(stderr, "FAILED on rank %d: %s (%s:%d)\n", world_rank(), expr, file, line);
    std::fflush(stderr);
  }
  return ok;
}

/// Sums the counts over all ranks; rank 0 prints the summary. Returns the
/// process exit code (non-zero if any rank failed a check).
inline int finish(const char* name) {
  long local[2] = {counts().passed, counts().failed};
  long total[2] = {0, 0};
  MPI_Allreduce(local, total, 2, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  if (world_rank() == 0) {
    std::printf("%s: %ld passed, %ld failed\n", name, total[0], total[1]);
    std::fflush(stdout);
  }
  return total[1] == 0 ? 0 : 1;
}

/// True if every rank passed the same 64-bit value.
inline bool same_on_all_ranks(std::uint64_t v) {
  std::vector<std::uint64_t> all(static_cast<std::size_t>(world_size()));
  MPI_Allgather(&v, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD);
  for (const std::uint64_t x : all) {
    if (x != all[0]) return false;
  }
  return true;
}

/// FNV-1a of a string (to compare messages across ranks).
inline std::uint64_t text_hash(const std::string& s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  return h ^ s.size();
}

template <class T>
bool bitwise_equal(std::span<const T> a, std::span<const T> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size_bytes()) == 0;
}

inline bool bitwise_equal(double a, double b) {
  return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}

}  // namespace zoopt_mpi_test

#define ZCHECK(cond) ::zoopt_mpi_test::record(static_cast<bool>(cond), #cond, __FILE__, __LINE__)
