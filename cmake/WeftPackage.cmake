# Package files for an installed weft: weft.pc for pkg-config and
# weftConfig.cmake for find_package(weft). Both are derived from the list of
# what libweft links (WEFT_PRIVATE_LIBS), so a new dependency needs no edit
# here as long as it is one of the forms below.
#
# weft_write_pkg_config(OUT PRIVATE_LIBS)
#
# Writes weft.pc from cmake/weft.pc.in. The file is relocatable: `prefix` is
# derived from ${pcfiledir}, the directory pkg-config found the file in, so
# the installed tree works wherever it is copied. (An absolute
# CMAKE_INSTALL_LIBDIR or INCLUDEDIR cannot be relocated; those are written
# as given.)
#
# PRIVATE_LIBS is the list of what libweft links (WEFT_PRIVATE_LIBS); each
# entry becomes a Libs.private flag, needed only for static linking:
#   Threads::Threads      -> -pthread
#   PkgConfig::NAME       -> Requires.private: the module NAME was found from
#   all the libraries of one pkg_check_modules() result (the entries of
#   ${LIBDW_LIBRARIES})   -> Requires.private: that module, so that
#                            `pkg-config --static` also brings its own
#                            dependencies (libdw needs zlib, liblzma, ...)
#   m, dl, rt, -lfoo, ... -> -lm, -ldl, ...

function(weft__pc_dir_expr var dir)
  if(IS_ABSOLUTE "${dir}")
    set(${var} "${dir}" PARENT_SCOPE)
  else()
    set(${var} "\${prefix}/${dir}" PARENT_SCOPE)
  endif()
endfunction()

# The pkg-config modules whose whole library list (<PREFIX>_LIBRARIES of a
# pkg_check_modules() call) appears in `libs`, and those libraries.
function(weft__pc_modules_in mods_var covered_var libs)
  set(mods "")
  set(covered "")
  get_cmake_property(cached CACHE_VARIABLES)
  foreach(v ${cached})
    # Two steps: the arguments of one if() are expanded before MATCHES sets
    # CMAKE_MATCH_1.
    if(NOT v MATCHES "^(.+)_MODULE_NAME$")
      continue()
    endif()
    set(mlibs "${${CMAKE_MATCH_1}_LIBRARIES}")
    set(all TRUE)
    foreach(l ${mlibs})
      if(NOT l IN_LIST libs)
        set(all FALSE)
      endif()
    endforeach()
    if(mlibs AND all)
      list(APPEND mods "${${v}}")
      list(APPEND covered ${mlibs})
    endif()
  endforeach()
  set(${mods_var} "${mods}" PARENT_SCOPE)
  set(${covered_var} "${covered}" PARENT_SCOPE)
endfunction()

function(weft__pc_private_libs libs_var requires_var)
  set(libs "")
  weft__pc_modules_in(requires covered "${ARGN}")
  foreach(lib ${ARGN})
    if(lib STREQUAL "Threads::Threads")
      list(APPEND libs "-pthread")
    elseif(lib MATCHES "^PkgConfig::(.+)$")
      # pkg_check_modules(NAME ... mod) records the module list it searched.
      set(mods "${${CMAKE_MATCH_1}_MODULE_NAME}")
      if(NOT mods)
        message(FATAL_ERROR "weft.pc: cannot tell which pkg-config module ${lib} is")
      endif()
      list(APPEND requires ${mods})
    elseif(lib MATCHES "^-")
      list(APPEND libs "${lib}")
    elseif(lib IN_LIST covered)
      # Brought in by its module's Requires.private.
    elseif(lib MATCHES "^[A-Za-z0-9_+.-]+$")
      list(APPEND libs "-l${lib}")
    else()
      message(FATAL_ERROR "weft.pc: no pkg-config spelling for link item '${lib}'")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES libs)
  list(REMOVE_DUPLICATES requires)
  list(JOIN libs " " libs)
  list(JOIN requires ", " requires)
  set(${libs_var} "${libs}" PARENT_SCOPE)
  set(${requires_var} "${requires}" PARENT_SCOPE)
endfunction()

function(weft_write_pkg_config out private_libs)
  set(pcdir "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
  if(IS_ABSOLUTE "${pcdir}")
    set(WEFT_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  else()
    # "lib/pkgconfig" -> "../..", "lib/x86_64-linux-gnu/pkgconfig" -> "../../..".
    file(RELATIVE_PATH up "/weft-root/${pcdir}" "/weft-root")
    string(REGEX REPLACE "/$" "" up "${up}")
    set(WEFT_PC_PREFIX "\${pcfiledir}/${up}")
  endif()
  weft__pc_dir_expr(WEFT_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
  weft__pc_dir_expr(WEFT_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
  weft__pc_private_libs(WEFT_PC_LIBS_PRIVATE requires ${private_libs})
  set(WEFT_PC_REQUIRES_LINE "")
  if(requires)
    set(WEFT_PC_REQUIRES_LINE "Requires.private: ${requires}")
  endif()
  configure_file(${PROJECT_SOURCE_DIR}/cmake/weft.pc.in ${out} @ONLY)
endfunction()

# weft_write_package_config(OUT PRIVATE_LIBS)
#
# Writes weftConfig.cmake from cmake/weftConfig.cmake.in. The exported
# targets name what libweft links; the config file re-creates those
# imported targets before loading the exports:
#   Threads::Threads  -> find_dependency(Threads)
#   PkgConfig::NAME   -> pkg_check_modules(NAME REQUIRED IMPORTED_TARGET module)
function(weft_write_package_config out private_libs)
  set(deps "")
  foreach(lib ${private_libs})
    if(lib STREQUAL "Threads::Threads")
      string(APPEND deps "find_dependency(Threads)\n")
    elseif(lib MATCHES "^PkgConfig::(.+)$")
      set(name ${CMAKE_MATCH_1})
      if(NOT deps MATCHES "find_dependency\\(PkgConfig\\)")
        string(APPEND deps "find_dependency(PkgConfig)\n")
      endif()
      string(APPEND deps
        "pkg_check_modules(${name} REQUIRED QUIET IMPORTED_TARGET ${${name}_MODULE_NAME})\n")
    endif()
  endforeach()
  set(WEFT_CONFIG_DEPENDENCIES "${deps}")
  configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/weftConfig.cmake.in ${out}
    INSTALL_DESTINATION ${WEFT_CMAKE_DIR})
endfunction()
