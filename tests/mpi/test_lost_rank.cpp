// A rank that hangs or exits in the middle of training. Run under mpiexec;
// the test passes when the job ends with a clear message (ctest checks the
// output) before the ctest timeout.
//   mpi_lost_rank hang <seconds>: the last rank stops calling step() after
//     2 steps and sleeps; the others must time out after <seconds> and abort.
//   mpi_lost_rank exit <seconds>: the last rank exits (code 3) after 2 steps.
#include <zoopt/kerzoo.hpp>
#include <zoopt/mpi.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "problem.hpp"

using namespace zoopt_mpi_test;
namespace zm = zoopt::mpi;

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  if (argc < 3) {
    std::fprintf(stderr, "usage: mpi_lost_rank hang|exit <timeout seconds>\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  const std::string mode = argv[1];
  const double timeout = std::atof(argv[2]);
  int me = 0;
  int p = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &me);
  MPI_Comm_size(MPI_COMM_WORLD, &p);
  {
    const std::size_t d = 301;
    const auto shard = make_shard(me, d);
    Replica<float> mine(d, 13, 61);
    zoopt::KerZOO<float> opt({.lr = 1e-4, .eps = 1e-3, .directions = 3, .seed = 1});
    zm::Distributed driver(
        opt, {.parallelism = zm::Parallelism::directions, .timeout_seconds = timeout});
    auto loss = [&] { return shard_loss<float>(shard, mine.values()); };
    for (int s = 0; s < 4; ++s) {
      if (s == 2 && me == p - 1) {
        if (mode == "exit") {
          std::fprintf(stderr, "rank %d exits abruptly before step 2\n", me);
          std::_Exit(3);
        }
        std::fprintf(stderr, "rank %d hangs before step 2\n", me);
        std::this_thread::sleep_for(std::chrono::duration<double>(timeout + 30.0));
        std::printf("UNEXPECTED: the hanging rank was not stopped\n");
        break;
      }
      driver.step(loss, mine.set);
    }
    if (me != p - 1) std::printf("UNEXPECTED: rank %d finished all steps\n", me);
  }
  MPI_Finalize();
  return 0;
}
