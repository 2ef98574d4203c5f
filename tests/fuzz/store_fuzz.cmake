# Store and trust fuzz targets (included by tests/fuzz/CMakeLists.txt): OCI manifests and
# indexes, the signed in-toto statement, and the bundle tar reader. The tar reader's source is
# compiled directly, so the fuzz build needs neither curl nor the HTTP layer.
set(HEARTH_STORE_FUZZ_SECONDS 20 CACHE STRING "seconds each store fuzz-smoke test runs")
hearth_fuzz_target(oci_manifest_fuzz
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/oci_manifest_fuzz.cpp
  DEPS hearth_store
  TEST_NAME fuzz_smoke_oci_manifest
  MAX_LEN 16384
  ARGS -max_total_time=${HEARTH_STORE_FUZZ_SECONDS}
  SEEDS ${CMAKE_CURRENT_LIST_DIR}/seeds/oci_manifest)
hearth_fuzz_target(trust_statement_fuzz
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/trust_statement_fuzz.cpp
  DEPS hearth_trust hearth_store
  TEST_NAME fuzz_smoke_trust_statement
  MAX_LEN 16384
  ARGS -max_total_time=${HEARTH_STORE_FUZZ_SECONDS}
  SEEDS ${CMAKE_CURRENT_LIST_DIR}/seeds/trust_statement)
hearth_fuzz_target(tar_reader_fuzz
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/tar_reader_fuzz.cpp ${PROJECT_SOURCE_DIR}/src/hearth/registry/tar_archive.cpp
  DEPS hearth_core
  TEST_NAME fuzz_smoke_tar_reader
  MAX_LEN 16384
  ARGS -max_total_time=${HEARTH_STORE_FUZZ_SECONDS}
  SEEDS ${CMAKE_CURRENT_LIST_DIR}/seeds/tar)
