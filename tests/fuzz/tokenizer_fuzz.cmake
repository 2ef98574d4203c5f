# Tokenizer fuzz targets (included by tests/fuzz/CMakeLists.txt). They load real vocabularies
# from the shared tokenizer vectors once at start (HEARTH_SHARED overrides the path).
set(HEARTH_TOKENIZER_FUZZ_SECONDS 20 CACHE STRING "seconds each tokenizer fuzz-smoke test runs")

# Seeds: the vector files' test strings (encode) and expected ids as text (decode).
set(seed_ext_encode inp)
set(seed_ext_decode out)
foreach(kind encode decode)
  set(seeds "")
  foreach(v llama-spm gpt-2 deepseek-llm falcon starcoder bert-bge)
    list(APPEND seeds ${HEARTH_SHARED_DIR}/tokenizer-vectors/ggml-vocab-${v}.gguf.${seed_ext_${kind}})
  endforeach()
  hearth_fuzz_target(tokenizer_${kind}_fuzz
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/tokenizer_${kind}_fuzz.cpp
    DEPS hearth_tokenizer hearth_gguf
    TEST_NAME fuzz_smoke_tokenizer_${kind}
    MAX_LEN 2048
    ARGS -max_total_time=${HEARTH_TOKENIZER_FUZZ_SECONDS}
    SEEDS ${seeds})
  target_compile_definitions(tokenizer_${kind}_fuzz PRIVATE
    HEARTH_TOKENIZER_VECTORS_DIR="${HEARTH_SHARED_DIR}/tokenizer-vectors")
  target_include_directories(tokenizer_${kind}_fuzz PRIVATE ${CMAKE_CURRENT_LIST_DIR})
endforeach()

# Hostile vocabularies (no real files needed; libFuzzer starts from an empty corpus).
hearth_fuzz_target(tokenizer_vocab_fuzz
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/tokenizer_vocab_fuzz.cpp
  DEPS hearth_tokenizer
  TEST_NAME fuzz_smoke_tokenizer_vocab
  MAX_LEN 1024
  ARGS -max_total_time=${HEARTH_TOKENIZER_FUZZ_SECONDS})
