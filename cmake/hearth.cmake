# Helpers shared by the module CMakeLists.

# hearth_module(NAME SOURCES ... DEPS ...): defines library hearth_NAME, adds it to the umbrella.
function(hearth_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS" ${ARGN})
  add_library(hearth_${name} STATIC ${M_SOURCES})
  target_include_directories(hearth_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(hearth_${name} PUBLIC ${M_DEPS})
  target_link_libraries(hearth INTERFACE hearth_${name})
endfunction()

# hearth_test(NAME SOURCES ... DEPS ... LABELS ...): a GoogleTest executable registered with CTest.
function(hearth_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_DEPS} hearth_test_support GTest::gtest GTest::gtest_main)
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
endfunction()
