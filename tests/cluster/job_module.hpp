// The test job's functions, for drivers that submit them to a cluster. The same source is built
// into the test executable (the driver) and as the shared library shipped to the nodes.
#pragma once

#include <atoll/atoll.hpp>

#include <string>

namespace job {

int add(int a, int b);
std::string greet(std::string name);
int fails(int x);  // throws std::invalid_argument
int segfault();
int aborts();
int exits(int code);
int nested(atl::RuntimeRef rt, int x);
int sleep_then(int ms, int value);

}  // namespace job

void test_job(atl::Registry& reg);
