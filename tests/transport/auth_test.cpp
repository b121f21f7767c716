// Cluster credentials: nonces, tokens, the HMAC proofs for both directions, and the token file.
#include "transport/auth.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>

#include "atoll/errors.hpp"

namespace atl::transport {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kToken = "a-cluster-token-of-enough-length";

bool is_lower_hex(const std::string& s) {
  return s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// A fresh directory under the system temp directory, removed with everything in it at the end.
class AuthFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() /
           ("atoll-auth-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()) + "-" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    ASSERT_TRUE(fs::create_directories(dir_));
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static void write_file(const fs::path& path, const std::string& text, mode_t mode) {
    {
      std::ofstream out(path);
      out << text;
    }
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
  }

  fs::path dir_;
};

TEST(AuthTest, NoncesDiffer) {
  std::set<Nonce> seen;
  for (int i = 0; i < 64; ++i) EXPECT_TRUE(seen.insert(make_nonce()).second);
  EXPECT_NE(make_nonce(), Nonce{});
}

TEST(AuthTest, GeneratedTokensAre64HexCharsAndDiffer) {
  std::set<std::string> seen;
  for (int i = 0; i < 32; ++i) {
    std::string token = generate_token();
    EXPECT_EQ(token.size(), 64u);
    EXPECT_TRUE(is_lower_hex(token)) << token;
    EXPECT_NO_THROW(validate_token(token));
    EXPECT_TRUE(seen.insert(token).second) << token;
  }
}

TEST(AuthTest, ValidateTokenRejectsShortTokens) {
  try {
    validate_token("short");
    FAIL() << "a 5-character token was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::invalid_argument);
    EXPECT_NE(std::string(e.what()).find(std::to_string(kMinTokenChars)), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(validate_token(""), Error);
  EXPECT_THROW(validate_token(std::string(kMinTokenChars - 1, 'x')), Error);
  EXPECT_NO_THROW(validate_token(std::string(kMinTokenChars, 'x')));
}

TEST(AuthTest, ProofsAreDeterministic) {
  const Nonce c = make_nonce();
  const Nonce s = make_nonce();
  EXPECT_EQ(server_proof(kToken, c, s), server_proof(kToken, c, s));
  EXPECT_EQ(client_proof(kToken, c, s, 1), client_proof(kToken, c, s, 1));
}

TEST(AuthTest, ServerAndClientProofsDifferForTheSameNonces) {
  const Nonce c = make_nonce();
  const Nonce s = make_nonce();
  const AuthProof server = server_proof(kToken, c, s);
  for (std::uint16_t role : {0, 1, 2}) EXPECT_NE(server, client_proof(kToken, c, s, role)) << role;
  EXPECT_FALSE(proofs_match(server, client_proof(kToken, c, s, 0)));
}

TEST(AuthTest, ClientProofDependsOnRole) {
  const Nonce c = make_nonce();
  const Nonce s = make_nonce();
  std::set<AuthProof> proofs;
  for (std::uint16_t role : {0, 1, 2, 256, 0xffff}) proofs.insert(client_proof(kToken, c, s, role));
  EXPECT_EQ(proofs.size(), 5u);
}

TEST(AuthTest, ProofsDependOnTokenAndBothNonces) {
  const Nonce c = make_nonce();
  const Nonce s = make_nonce();
  const Nonce other = make_nonce();
  const AuthProof base = server_proof(kToken, c, s);
  EXPECT_NE(base, server_proof("another-token-of-length", c, s));
  EXPECT_NE(base, server_proof(kToken, other, s));
  EXPECT_NE(base, server_proof(kToken, c, other));
  EXPECT_NE(base, server_proof(kToken, s, c));  // the nonces' order matters
  const AuthProof client = client_proof(kToken, c, s, 1);
  EXPECT_NE(client, client_proof("another-token-of-length", c, s, 1));
  EXPECT_NE(client, client_proof(kToken, other, s, 1));
  EXPECT_NE(client, client_proof(kToken, c, other, 1));
}

TEST(AuthTest, ProofsMatch) {
  const Nonce c = make_nonce();
  const Nonce s = make_nonce();
  const AuthProof a = server_proof(kToken, c, s);
  AuthProof b = a;
  EXPECT_TRUE(proofs_match(a, b));
  b[kProofBytes - 1] ^= std::byte{1};
  EXPECT_FALSE(proofs_match(a, b));
  b = a;
  b[0] ^= std::byte{0x80};
  EXPECT_FALSE(proofs_match(a, b));
  // Different sizes never match, even as a prefix.
  EXPECT_FALSE(proofs_match(a, std::span(a).first(kProofBytes - 1)));
  EXPECT_FALSE(proofs_match(std::span(a).first(0), a));
  EXPECT_TRUE(proofs_match(std::span(a).first(0), std::span(b).first(0)));
}

TEST_F(AuthFileTest, CreatesTokenFileWithMode0600AndReusesIt) {
  const fs::path path = dir_ / "nested" / "token";
  const std::string token = load_or_create_token(path);
  EXPECT_EQ(token.size(), 64u);
  EXPECT_TRUE(is_lower_hex(token));

  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u) << std::oct << (st.st_mode & 0777);

  EXPECT_EQ(load_or_create_token(path), token);
  EXPECT_EQ(load_or_create_token(path), token);
}

TEST_F(AuthFileTest, ReadsAnExistingPrivateTokenFile) {
  const fs::path path = dir_ / "token";
  write_file(path, std::string(kToken) + "\n", 0600);
  EXPECT_EQ(load_or_create_token(path), kToken);
}

TEST_F(AuthFileTest, RejectsATokenFileReadableByOthers) {
  for (mode_t mode : {0644, 0640, 0604, 0660}) {
    const fs::path path = dir_ / ("token-" + std::to_string(mode));
    write_file(path, std::string(kToken) + "\n", mode);
    try {
      load_or_create_token(path);
      FAIL() << "mode " << std::oct << mode << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::invalid_argument);
      EXPECT_NE(std::string(e.what()).find("chmod"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    }
  }
}

TEST_F(AuthFileTest, RejectsAShortToken) {
  const fs::path path = dir_ / "token";
  write_file(path, "short\n", 0600);
  try {
    load_or_create_token(path);
    FAIL() << "a short token was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::invalid_argument);
  }
  // An empty file too.
  const fs::path empty = dir_ / "empty";
  write_file(empty, "", 0600);
  EXPECT_THROW(load_or_create_token(empty), Error);
}

}  // namespace
}  // namespace atl::transport

namespace atl::transport {
namespace {

TEST_F(AuthFileTest, RefusesASymlinkedTokenFile) {
  const fs::path real = dir_ / "real-token";
  write_file(real, std::string(kToken) + "\n", 0600);
  const fs::path link = dir_ / "token";
  fs::create_symlink(real, link);
  EXPECT_THROW(load_or_create_token(link), Error);
}

TEST_F(AuthFileTest, StoreTokenReplacesTheFilePrivately) {
  const fs::path path = dir_ / "token";
  write_file(path, std::string(kToken) + "\n", 0600);
  const std::string other = generate_token();
  store_token(path, other);
  EXPECT_EQ(load_or_create_token(path), other);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THROW(store_token(path, "short"), Error);
}

}  // namespace
}  // namespace atl::transport
