// Code shipping and worker processes: modules stored by hash, verified before loading, and tasks
// whose crashes take down only their worker.
#include "runtime/worker_process.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "atoll/errors.hpp"
#include "atoll/serialization.hpp"
#include "runtime/module_store.hpp"
#include "runtime/shared_memory.hpp"
#include "runtime/wire_values.hpp"
#include "tests/cluster/job_module.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using atl::runtime::WorkerProcess;

std::vector<std::byte> read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

template <class T>
atl::Buffer arg(const T& v) {
  std::string bytes = atl::runtime::wire_string(atl::detail::serialize(v));
  return atl::Buffer::copy_of(bytes.data(), bytes.size());
}

template <class T>
T result(const atl::runtime::WorkerOutcome& o) {
  return atl::detail::deserialize<T>(atl::runtime::payload_of(o.value));
}

class WorkerProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("atoll-modules-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    store_ = std::make_unique<atl::runtime::ModuleStore>(dir_);
    hash_ = store_->put(read_file(ATOLL_TEST_JOB));
  }
  void TearDown() override { fs::remove_all(dir_); }

  atl::runtime::WorkerSpec spec(std::string name = "test_job") {
    return {
        {.executable = ATOLL_CLI}, store_->verified_path(hash_)->string(), hash_, std::move(name)};
  }

  fs::path dir_;
  std::unique_ptr<atl::runtime::ModuleStore> store_;
  std::string hash_;
};

TEST(Sha256Test, known_vector) {
  std::string abc = "abc";
  EXPECT_EQ(atl::runtime::sha256_hex(std::as_bytes(std::span(abc))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(WorkerProcessTest, runs_tasks_from_a_shipped_module) {
  auto worker = WorkerProcess::spawn(spec(), 10s);
  EXPECT_EQ(worker->functions(), 20u);
  auto sum = worker->execute("add", {arg(1), arg(2)}, 10s);
  ASSERT_TRUE(sum.ok) << sum.message;
  EXPECT_EQ(result<int>(sum), 3);
  auto hi = worker->execute("greet", {arg(std::string("atoll"))}, 10s);
  ASSERT_TRUE(hi.ok) << hi.message;
  EXPECT_EQ(result<std::string>(hi), "hello, atoll");
}

TEST_F(WorkerProcessTest, exceptions_come_back_with_type_and_message) {
  auto worker = WorkerProcess::spawn(spec(), 10s);
  auto out = worker->execute("fails", {arg(7)}, 10s);
  EXPECT_FALSE(out.ok);
  EXPECT_NE(out.remote_type.find("invalid_argument"), std::string::npos) << out.remote_type;
  EXPECT_EQ(out.message, "bad input 7");
  EXPECT_TRUE(worker->execute("add", {arg(2), arg(2)}, 10s).ok);  // the worker carries on
  auto missing = worker->execute("nope", {}, 10s);
  EXPECT_FALSE(missing.ok);
  EXPECT_NE(missing.message.find("no function named 'nope'"), std::string::npos);
  auto nested = worker->execute("nested", {arg(1)}, 10s);
  EXPECT_FALSE(nested.ok);
  EXPECT_NE(nested.message.find("nested tasks"), std::string::npos) << nested.message;
  auto wrong_args = worker->execute("add", {arg(1)}, 10s);
  EXPECT_FALSE(wrong_args.ok);
}

// A Buffer's form between processes (a msgpack bin), in a block of the node's shared memory.
atl::Buffer shared_value(atl::runtime::SharedMemoryPool& pool, const atl::Buffer& value) {
  atl::detail::Payload p = atl::detail::serialize(value);
  atl::MutableBuffer block = pool.allocate(atl::runtime::wire_size(p));
  atl::runtime::write_wire(p, block.data());
  return std::move(block).freeze();
}

TEST_F(WorkerProcessTest, large_values_travel_through_shared_memory_both_ways) {
  constexpr int kBytes = 3 << 20;
  auto pool = atl::runtime::SharedMemoryPool::create(64 << 20);
  auto worker = WorkerProcess::spawn(spec(), 10s);
  atl::Buffer lent = shared_value(*pool, job::buffer_blob(kBytes, 5));
  auto d = worker->execute("buffer_digest", {lent}, 10s);
  ASSERT_TRUE(d.ok) << d.message;
  EXPECT_EQ(result<std::uint64_t>(d), job::digest(job::blob(kBytes, 5)));
  EXPECT_EQ(worker->values_lent(), 0u);  // unmapped before the outcome was sent
  // A parameter that reads a bin takes the same bytes.
  auto as_string = worker->execute("digest", {lent}, 10s);
  ASSERT_TRUE(as_string.ok) << as_string.message;
  EXPECT_EQ(result<std::uint64_t>(as_string), job::digest(job::blob(kBytes, 5)));

  // A value the worker keeps stays lent, so its block is not reused under it.
  auto kept = worker->execute("stash", {lent}, 10s);
  ASSERT_TRUE(kept.ok) << kept.message;
  EXPECT_EQ(worker->values_lent(), 1u);

  // A large result comes back in shared memory.
  auto big = worker->execute("buffer_blob", {arg(kBytes), arg(9)}, 10s);
  ASSERT_TRUE(big.ok) << big.message;
  EXPECT_TRUE(atl::runtime::shared_span_of(big.value).has_value());
  EXPECT_EQ(job::buffer_digest(result<atl::Buffer>(big)), job::digest(job::blob(kBytes, 9)));
  auto small = worker->execute("buffer_blob", {arg(100), arg(9)}, 10s);
  ASSERT_TRUE(small.ok) << small.message;
  EXPECT_FALSE(atl::runtime::shared_span_of(small.value).has_value());  // inline
  EXPECT_EQ(job::buffer_digest(result<atl::Buffer>(small)), job::digest(job::blob(100, 9)));

  // Letting go of the kept value gives the block back.
  auto replaced = worker->execute("stash", {arg(atl::Buffer::copy_of("x", 1))}, 10s);
  ASSERT_TRUE(replaced.ok) << replaced.message;
  EXPECT_EQ(worker->values_lent(), 0u);
  // A large value on the heap goes inline.
  auto heap = worker->execute("buffer_digest", {arg(job::buffer_blob(kBytes, 6))}, 10s);
  ASSERT_TRUE(heap.ok) << heap.message;
  EXPECT_EQ(result<std::uint64_t>(heap), job::digest(job::blob(kBytes, 6)));
}

// In sanitizer builds the worker's sanitizer would catch the signal, print a report and exit(1);
// let the signal kill the worker as it would in a normal build. Read by each child at start-up.
void let_signals_kill_sanitized_workers() {
  for (const char* name : {"ASAN_OPTIONS", "TSAN_OPTIONS", "UBSAN_OPTIONS"}) {
    const char* old = std::getenv(name);
    std::string value = old != nullptr ? std::string(old) + ":" : std::string();
    value += "handle_segv=0:handle_abort=0:handle_sigbus=0";
    ::setenv(name, value.c_str(), 1);
  }
}

TEST_F(WorkerProcessTest, a_crash_takes_down_only_the_worker_and_names_the_signal) {
  let_signals_kill_sanitized_workers();
  for (auto [fn, expected] : std::vector<std::pair<std::string, std::string>>{
           {"segfault", "SIGSEGV"}, {"aborts", "SIGABRT"}}) {
    auto worker = WorkerProcess::spawn(spec(), 10s);
    try {
      worker->execute(fn, {}, 10s);
      FAIL() << fn << " returned";
    } catch (const atl::Error& e) {
      EXPECT_EQ(e.category(), atl::ErrorCategory::disconnected);
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
    EXPECT_FALSE(worker->alive());
  }
  auto worker = WorkerProcess::spawn(spec(), 10s);
  try {
    worker->execute("exits", {arg(3)}, 10s);
    FAIL() << "exits returned";
  } catch (const atl::Error& e) {
    EXPECT_NE(std::string(e.what()).find("exited with status 3"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(WorkerProcess::spawn(spec(), 10s)->execute("add", {arg(1), arg(1)}, 10s).ok);
}

TEST_F(WorkerProcessTest, a_module_whose_hash_does_not_match_is_never_loaded) {
  auto s = spec();
  s.module_hash = std::string(64, '0');
  try {
    WorkerProcess::spawn(s, 10s);
    FAIL() << "a mismatched module was loaded";
  } catch (const atl::Error& e) {
    EXPECT_NE(std::string(e.what()).find("refusing to load"), std::string::npos) << e.what();
  }
}

TEST_F(WorkerProcessTest, an_unknown_module_name_is_a_clear_error) {
  try {
    WorkerProcess::spawn(spec("other"), 10s);
    FAIL() << "expected an error";
  } catch (const atl::Error& e) {
    EXPECT_NE(std::string(e.what()).find("atoll_module_other"), std::string::npos) << e.what();
  }
}

TEST_F(WorkerProcessTest, a_tampered_stored_module_is_removed_and_refused) {
  fs::path p = *store_->verified_path(hash_);
  fs::permissions(p, fs::perms::owner_all);
  std::ofstream(p, std::ios::app) << "tampered";
  EXPECT_THROW(store_->verified_path(hash_), atl::Error);
  EXPECT_FALSE(fs::exists(p));
  EXPECT_FALSE(store_->verified_path(hash_).has_value());
  auto bytes = read_file(ATOLL_TEST_JOB);
  EXPECT_THROW(store_->put_expecting(std::string(64, 'a'), bytes), atl::Error);
  store_->put_expecting(hash_, bytes);
  EXPECT_TRUE(store_->verified_path(hash_).has_value());
}

}  // namespace
