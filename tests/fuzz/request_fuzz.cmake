# Request-parsing fuzz targets (included by tests/fuzz/CMakeLists.txt): an HTTP body through
# the OpenAI request parsers, and a JSON schema through compilation and the constrained-decoding
# matcher. They compile the parser sources directly, so the fuzz build needs neither the HTTP
# layer nor the model.
find_package(nlohmann_json REQUIRED)
set(HEARTH_REQUEST_FUZZ_SECONDS 20 CACHE STRING "seconds each request fuzz-smoke test runs")
set(request_fuzz_parsers
  ${PROJECT_SOURCE_DIR}/src/hearth/server/openai_request.cpp
  ${PROJECT_SOURCE_DIR}/src/hearth/server/json_schema_parse.cpp
  ${PROJECT_SOURCE_DIR}/src/hearth/server/api_error.cpp
  ${PROJECT_SOURCE_DIR}/src/hearth/server/tool_calls.cpp
  ${PROJECT_SOURCE_DIR}/src/hearth/engine/json_constraint.cpp)
foreach(name openai_request json_schema)
  hearth_fuzz_target(${name}_fuzz
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/${name}_fuzz.cpp ${request_fuzz_parsers}
    DEPS hearth_tokenizer hearth_sampling hearth_core nlohmann_json::nlohmann_json
    TEST_NAME fuzz_smoke_${name}
    MAX_LEN 8192
    ARGS -max_total_time=${HEARTH_REQUEST_FUZZ_SECONDS}
    SEEDS ${CMAKE_CURRENT_LIST_DIR}/seeds/${name})
endforeach()
