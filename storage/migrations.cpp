#include "storage/migrations.h"

#include <pqxx/result>
#include <pqxx/transaction>

#include <set>
#include <string>

#include "common/log.h"

namespace perfwatch::storage {
namespace {
// Arbitrary constant shared by every perfwatch version ("pwschema" in ASCII).
constexpr std::int64_t migration_lock_key = 0x7077736368656d61;
}  // namespace

Result<int> migrate(pqxx::connection_base& conn) {
  try {
    pqxx::work tx(conn, "migrate");
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", migration_lock_key);
    tx.exec0(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())");
    std::set<int> applied;
    for (const auto& row : tx.exec("SELECT version FROM schema_migrations")) applied.insert(row[0].as<int>());

    int count = 0;
    for (const Migration& m : embedded_migrations()) {
      if (applied.count(m.version)) continue;
      tx.exec(std::string(m.sql), std::string(m.name));
      tx.exec_params0("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version,
                      std::string(m.name));
      log::info("applied schema migration", {{"version", m.version}, {"name", m.name}});
      ++count;
    }
    if (!applied.empty() && *applied.rbegin() > embedded_migrations().back().version)
      log::warn("the database schema is newer than this perfwatch",
                {{"database_version", *applied.rbegin()}, {"known_version", embedded_migrations().back().version}});
    tx.commit();
    return count;
  } catch (const std::exception& e) {
    return make_error(std::string("schema migration failed: ") + e.what());
  }
}

}  // namespace perfwatch::storage
