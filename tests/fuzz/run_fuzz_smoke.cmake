# Runs one libFuzzer binary for SECONDS on a corpus seeded from SEEDS (a ;-list of files or dirs).
# Called by the fuzz_smoke_* tests: cmake -DFUZZER=... -DCORPUS=... -DSEEDS=... -DMAX_LEN=...
#   -DSECONDS=... [-DEXTRA_ARGS=...] -P run_fuzz_smoke.cmake. Fails when the fuzzer finds a crash.
file(MAKE_DIRECTORY ${CORPUS})
foreach(seed IN LISTS SEEDS)
  if(IS_DIRECTORY ${seed})
    file(GLOB files ${seed}/*)
    file(COPY ${files} DESTINATION ${CORPUS} FILE_PERMISSIONS OWNER_READ OWNER_WRITE)
  elseif(EXISTS ${seed})
    file(COPY ${seed} DESTINATION ${CORPUS} FILE_PERMISSIONS OWNER_READ OWNER_WRITE)
  else()
    message(STATUS "fuzz smoke: seed ${seed} not found, skipped")
  endif()
endforeach()
get_filename_component(work ${CORPUS} DIRECTORY)
# HEARTH_FUZZ_SEED_DIR: a target may write generated seeds into the corpus at start (before
# libFuzzer reads it), instead of keeping binary seed files in the repository.
execute_process(
  COMMAND ${CMAKE_COMMAND} -E env HEARTH_FUZZ_SEED_DIR=${CORPUS} ${FUZZER} ${CORPUS} -max_total_time=${SECONDS} -max_len=${MAX_LEN} -timeout=30
          -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=${work}/ ${EXTRA_ARGS}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "fuzzer ${FUZZER} failed (exit ${rc}); crash inputs are in ${work}")
endif()
