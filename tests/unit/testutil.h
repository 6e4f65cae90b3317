// Small helpers shared by the unit tests: temporary directories and SQLite.
#pragma once

#include <sqlite3.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <memory>
#include <stdexcept>
#include <string>

#include "lib/object_store.h"

namespace sqlbak::test {

// A store that passes every call to INNER: tests derive from it and override
// the calls they make fail, count or watch.
class ForwardingStore : public ObjectStore {
 public:
  explicit ForwardingStore(std::unique_ptr<ObjectStore> inner) : inner_(std::move(inner)) {}
  std::string describe() const override { return inner_->describe(); }
  Status put(const std::string& key, std::string_view data) override { return inner_->put(key, data); }
  Status get(const std::string& k, std::string* d) const override { return inner_->get(k, d); }
  Status get_range(const std::string& k, uint64_t o, uint64_t l, std::string* d) const override {
    return inner_->get_range(k, o, l, d);
  }
  Result<bool> exists(const std::string& k) const override { return inner_->exists(k); }
  Result<std::vector<ObjectInfo>> list(const std::string& p) const override { return inner_->list(p); }
  Status remove(const std::string& k) override { return inner_->remove(k); }
  Result<std::unique_ptr<StoreLock>> lock(const std::string& n) override { return inner_->lock(n); }
  Result<std::unique_ptr<StoreLock>> lock_shared(const std::string& n) override {
    return inner_->lock_shared(n);
  }

 protected:
  std::unique_ptr<ObjectStore> inner_;
};

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sqlbak-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void sql(const std::string& db_path, const std::string& statements) {
  sqlite3* db = nullptr;
  if (sqlite3_open(db_path.c_str(), &db) != SQLITE_OK) throw std::runtime_error("open " + db_path);
  char* err = nullptr;
  int rc = sqlite3_exec(db, statements.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  if (rc != SQLITE_OK) throw std::runtime_error("sql: " + msg + " in: " + statements);
}

// The first column of the first row, as text.
inline std::string query(const std::string& db_path, const std::string& q) {
  sqlite3* db = nullptr;
  sqlite3_open(db_path.c_str(), &db);
  sqlite3_stmt* st = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(db, q.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
    const unsigned char* t = sqlite3_column_text(st, 0);
    out = t ? reinterpret_cast<const char*>(t) : "";
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

// A database of N rows of varied text, in JOURNAL mode, with PAGE_SIZE pages.
inline void make_db(const std::string& path, int rows, const std::string& journal = "wal",
                    int page_size = 4096) {
  sql(path, "PRAGMA page_size=" + std::to_string(page_size) + "; PRAGMA journal_mode=" + journal +
                "; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, b BLOB);"
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<" +
                std::to_string(rows) +
                ") INSERT INTO t(v, b) SELECT printf('row %d %s', x, hex(randomblob(20))), "
                "randomblob(x % 200) FROM c; CREATE INDEX t_v ON t(v);");
}

}  // namespace sqlbak::test
