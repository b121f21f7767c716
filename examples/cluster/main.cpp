// cluster: a driver that runs its tasks and an actor on a cluster's nodes, in worker processes.
//   atoll up --islands 2 --nodes-per-island 2
//   ATOLL_TOKEN=$(cat ~/.atoll/token) build/examples/atoll_cluster_demo $(cat ~/.atoll/head.addr)
#include <unistd.h>

#include <iostream>
#include <set>

#include "examples/cluster/job.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: ATOLL_TOKEN=<token> " << argv[0] << " HEAD_HOST:PORT\n";
    return 2;
  }
  auto rt = atl::init({.address = argv[1],
                       .modules = {cluster_demo},
                       .job_module = {.library = ATOLL_DEMO_JOB, .name = "cluster_demo"}});
  std::cout << "driver pid " << ::getpid() << " connected to " << argv[1] << "\n";

  std::vector<atl::ObjectRef<std::string>> places;
  for (int i = 0; i < 16; ++i) places.push_back(rt.task(demo::where).remote());
  std::set<std::string> workers;
  for (auto& p : rt.get(places)) workers.insert(p);
  std::cout << "16 tasks ran in " << workers.size() << " worker processes:";
  for (const auto& w : workers) std::cout << " [" << w << "]";
  std::cout << "\n";

  std::vector<atl::ObjectRef<long>> squares;
  for (long i = 1; i <= 100; ++i) squares.push_back(rt.task(demo::square).remote(i));
  std::vector<long> values = rt.get(squares);
  auto sum = rt.task(demo::total).remote(rt.put(values));  // an ObjectRef as an argument
  std::cout << "sum of the first 100 squares, computed remotely: " << sum.get() << "\n";

  auto counts = rt.task(demo::count_words).remote(std::string("the fleet is the cluster")).get();
  std::cout << "word counts:";
  for (const auto& [word, n] : counts) std::cout << " " << word << "=" << n;
  std::cout << "\n";

  // An actor: calls keep their order and its state stays in its own worker process.
  auto averager = rt.actor<demo::Averager>().options({.name = "averager"}).remote();
  std::vector<atl::ObjectRef<double>> averages;
  for (double v : {1.0, 2.0, 3.0, 4.0}) averages.push_back(averager.call(&demo::Averager::add, v));
  std::cout << "running averages from an actor in " << averager.call(&demo::Averager::where).get()
            << ":";
  for (double a : rt.get(averages)) std::cout << " " << a;
  std::cout << "\n";
  auto same = rt.get_actor<demo::Averager>("averager");  // any driver could look it up by name
  std::cout << "found by name, it has seen " << same->call(&demo::Averager::count).get()
            << " values\n";
  rt.kill(averager);

  try {
    rt.task(demo::checked_ratio).remote(1.0, 0.0).get();
  } catch (const atl::TaskError& e) {
    std::cout << "a remote error came back: " << e.what() << "\n";
  }
  return 0;
}
