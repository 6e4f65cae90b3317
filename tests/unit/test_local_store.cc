#include <catch2/catch.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/local_store.h"
#include "testutil.h"

using namespace sqlbak;
using sqlbak::test::TempDir;

TEST_CASE("object keys are checked") {
  CHECK(is_valid_object_key("packs/ab/abcdef"));
  CHECK(is_valid_object_key("config"));
  CHECK_FALSE(is_valid_object_key("../etc/passwd"));
  CHECK_FALSE(is_valid_object_key("/abs"));
  CHECK_FALSE(is_valid_object_key("a//b"));
  CHECK_FALSE(is_valid_object_key("a/./b"));
  CHECK_FALSE(is_valid_object_key("a b"));
  CHECK_FALSE(is_valid_object_key(""));
}

TEST_CASE("a local store puts, gets, lists and removes objects") {
  TempDir dir;
  auto store = LocalObjectStore::open("local", dir.path(), true);
  REQUIRE(store.ok());
  ObjectStore& s = **store;
  REQUIRE(s.put("packs/ab/ab01", "hello").ok());
  REQUIRE(s.put("packs/cd/cd02", "world!").ok());
  REQUIRE(s.put("manifests/shop/x.json", "{}").ok());
  std::string data;
  REQUIRE(s.get("packs/ab/ab01", &data).ok());
  CHECK(data == "hello");
  REQUIRE(s.get_range("packs/cd/cd02", 1, 3, &data).ok());
  CHECK(data == "orl");
  CHECK(s.get_range("packs/cd/cd02", 4, 10, &data).code() == ErrorCode::kCorruption);
  CHECK(s.get("packs/zz/none", &data).code() == ErrorCode::kNotFound);
  auto packs = s.list("packs/");
  REQUIRE(packs.ok());
  CHECK(packs->size() == 2);
  auto all = s.list("");
  REQUIRE(all.ok());
  CHECK(all->size() == 3);
  REQUIRE(s.remove("packs/ab/ab01").ok());
  REQUIRE(s.remove("packs/ab/ab01").ok());
  CHECK(s.exists("packs/ab/ab01").value() == false);
  CHECK(s.exists("packs/cd/cd02").value() == true);
  CHECK(s.put("../escape", "x").code() == ErrorCode::kInternal);
  // Nothing is left in tmp/ after successful puts.
  auto tmp = std::filesystem::directory_iterator(dir / "tmp");
  CHECK(std::distance(tmp, std::filesystem::directory_iterator()) == 0);
}

TEST_CASE("opening a missing or unusable directory names it") {
  TempDir dir;
  auto missing = LocalObjectStore::open("local", dir / "nope", true);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == ErrorCode::kNotFound);
  CHECK(missing.status().message().find(dir / "nope") != std::string::npos);
  sqlbak::test::write_file(dir / "file", "x");
  auto not_dir = LocalObjectStore::open("local", dir / "file", true);
  REQUIRE_FALSE(not_dir.ok());
  CHECK(not_dir.status().message().find("not a directory") != std::string::npos);
}

TEST_CASE("the database lock is exclusive and released with its holder") {
  TempDir dir;
  auto store = LocalObjectStore::open("local", dir.path(), true);
  REQUIRE(store.ok());
  {
    auto first = (*store)->lock("db-shop");
    REQUIRE(first.ok());
    auto second = (*store)->lock("db-shop");
    REQUIRE_FALSE(second.ok());
    CHECK(second.status().code() == ErrorCode::kLocked);
    CHECK(second.status().message().find("pid " + std::to_string(::getpid())) != std::string::npos);
    CHECK((*store)->lock("db-other").ok());
  }
  CHECK((*store)->lock("db-shop").ok());

  // A child that dies holding the lock does not keep it.
  pid_t child = ::fork();
  if (child == 0) {
    auto held = (*store)->lock("db-crash");
    ::_exit(held.ok() ? 0 : 1);  // exits without releasing anything
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(WEXITSTATUS(status) == 0);
  CHECK((*store)->lock("db-crash").ok());
}

TEST_CASE("temporary files of dead writers are removed when a lock is taken") {
  TempDir dir;
  auto store = LocalObjectStore::open("local", dir.path(), true);
  REQUIRE(store.ok());
  REQUIRE((*store)->put("config", "x").ok());
  // pid 2^22+1 is above the default pid_max: no such process.
  sqlbak::test::write_file(dir / "tmp/4194305-deadbeef", "partial");
  sqlbak::test::write_file(dir / "tmp/1-alive", "init's");
  auto lock = (*store)->lock("db-shop");
  REQUIRE(lock.ok());
  CHECK_FALSE(std::filesystem::exists(dir / "tmp/4194305-deadbeef"));
  CHECK(std::filesystem::exists(dir / "tmp/1-alive"));
}

TEST_CASE("a local store counts its operations as an object store's requests") {
  TempDir dir;
  auto store = LocalObjectStore::open("local", dir.path(), true);
  REQUIRE(store.ok());
  ObjectStore& s = **store;
  CHECK(s.counters().put_requests == 0);
  REQUIRE(s.put("packs/ab/ab01", "hello").ok());
  REQUIRE(s.put("packs/cd/cd02", "world!").ok());
  std::string data;
  REQUIRE(s.get("packs/ab/ab01", &data).ok());
  REQUIRE(s.get_range("packs/cd/cd02", 1, 3, &data).ok());
  CHECK(s.get("packs/zz/none", &data).code() == ErrorCode::kNotFound);  // a failed GET is billed too
  REQUIRE(s.exists("packs/ab/ab01").ok());
  REQUIRE(s.list("packs/").ok());
  REQUIRE(s.remove_many({"packs/ab/ab01", "packs/cd/cd02"}).ok());
  auto lock = s.lock("db-shop");  // flock: no request
  REQUIRE(lock.ok());

  const TransferCounters c = s.counters();
  CHECK(c.put_requests == 2);
  CHECK(c.get_requests == 4);
  CHECK(c.list_requests == 1);
  CHECK(c.delete_requests == 2);
  CHECK(c.bytes_uploaded == 11);
  CHECK(c.bytes_downloaded == 8);
}
