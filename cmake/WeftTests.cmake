# Test registration. Every tests/<layer>/test_*.c is one executable; each
# case in it becomes its own CTest test (its own process, its own timeout):
#  - cmocka cases, found as `cmocka_unit_test(NAME)` in the source, run as
#    `exe NAME`;
#  - extra runs declared in the source as comment lines
#        // ctest NAME ARGS...
#    run as `exe ARGS...` (stress programs, self-tests of the harness).
# A line `// ctest-timeout SECONDS` sets the timeout for the file's cases
# (default 60 s), multiplied under sanitizers; lines `// ctest-env NAME=VALUE`
# set environment variables for them.

function(weft_add_test_file src)
  get_filename_component(stem ${src} NAME_WE)
  get_filename_component(dir ${src} DIRECTORY)
  get_filename_component(layer ${dir} NAME)
  set(exe ${layer}_${stem})
  add_executable(${exe} ${src})
  target_include_directories(${exe} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(${exe} PRIVATE weft_static ${WEFT_CMOCKA_LIBRARIES} Threads::Threads m)
  target_compile_options(${exe} PRIVATE ${WEFT_CMOCKA_CFLAGS})

  # Cases are read from the source: re-configure whenever it changes, so a
  # case added to an existing file is registered at the next build.
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${src})
  file(READ ${src} text)
  set(timeout 60)
  string(REGEX MATCH "// ctest-timeout ([0-9]+)" m "${text}")
  if(m)
    set(timeout ${CMAKE_MATCH_1})
  endif()
  math(EXPR timeout "${timeout} * ${WEFT_TEST_TIMEOUT_SCALE}")
  string(REGEX MATCHALL "// ctest-env [A-Za-z_][A-Za-z0-9_]*=[^\n]*" envs "${text}")
  set(env "")
  foreach(e ${envs})
    string(REGEX REPLACE "^// ctest-env " "" e "${e}")
    list(APPEND env "${e}")
  endforeach()

  string(REGEX MATCHALL "cmocka_unit_test[a-z_]*\\([A-Za-z0-9_]+" cases "${text}")
  foreach(c ${cases})
    string(REGEX REPLACE "^.*\\(" "" name "${c}")
    set(tname ${layer}.${stem}.${name})
    add_test(NAME ${tname} COMMAND ${exe} ${name})
    set_tests_properties(${tname} PROPERTIES TIMEOUT ${timeout} LABELS ${layer})
    if(env)
      set_tests_properties(${tname} PROPERTIES ENVIRONMENT "${env}")
    endif()
  endforeach()

  string(REGEX MATCHALL "// ctest [A-Za-z0-9_.-]+[^\n]*" runs "${text}")
  foreach(r ${runs})
    string(REGEX REPLACE "^// ctest ([A-Za-z0-9_.-]+).*$" "\\1" name "${r}")
    string(REGEX REPLACE "^// ctest [A-Za-z0-9_.-]+ ?" "" args "${r}")
    separate_arguments(argv UNIX_COMMAND "${args}")
    set(tname ${layer}.${stem}.${name})
    add_test(NAME ${tname} COMMAND ${exe} ${argv})
    set_tests_properties(${tname} PROPERTIES TIMEOUT ${timeout} LABELS ${layer})
    if(env)
      set_tests_properties(${tname} PROPERTIES ENVIRONMENT "${env}")
    endif()
  endforeach()
endfunction()
