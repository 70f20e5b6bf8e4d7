# Sourced by scripts/test.sh: starts Debian's PostgreSQL 15 cluster (down at boot on the CI machines)
# and makes a database root can reach over the Unix socket; exports its URI as PERFWATCH_TEST_PG.
if ! pg_lsclusters -h 2>/dev/null | grep -q '^15 \+main'; then
  pg_createcluster 15 main >/dev/null
fi
pg_ctlcluster 15 main start 2>/dev/null || pg_ctlcluster 15 main status >/dev/null
for _ in $(seq 1 30); do
  runuser -u postgres -- pg_isready -q && break
  sleep 1
done
runuser -u postgres -- psql -qtAc "SELECT 1 FROM pg_roles WHERE rolname='root'" | grep -q 1 ||
  runuser -u postgres -- psql -qc "CREATE ROLE root LOGIN SUPERUSER"
runuser -u postgres -- psql -qtAc "SELECT 1 FROM pg_database WHERE datname='perfwatch_test'" | grep -q 1 ||
  runuser -u postgres -- psql -qc "CREATE DATABASE perfwatch_test OWNER root"
export PERFWATCH_TEST_PG="postgresql:///perfwatch_test?host=/var/run/postgresql"
